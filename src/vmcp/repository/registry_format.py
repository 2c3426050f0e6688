"""The MCP registry's list format, shared by its REST API and static ``index.json`` files.

A page of ``GET /v0/servers`` looks like::

    {"servers": [{"server": {...server.json...}, "_meta": {...}}, ...],
     "metadata": {"nextCursor": "...", "count": 30}}

Older registries returned the ``server.json`` objects directly in ``servers``; a static
index may also be a bare JSON list. All of these are accepted.
"""

from __future__ import annotations

import json
from typing import Any

from vmcp.repository.base import RawManifest

_OFFICIAL_META = "io.modelcontextprotocol.registry/official"


class FormatError(ValueError):
    """A document is not in the registry's list format."""


def entries_from_page(payload: Any, location: str) -> tuple[list[RawManifest], str | None]:
    """The manifests of one page and the cursor of the next (None on the last page).

    Entries the registry marks ``deleted`` are left out.

    :raises FormatError: the payload is neither a list nor an object with ``servers``.
    """
    if isinstance(payload, list):
        items, cursor = payload, None
    elif isinstance(payload, dict) and isinstance(payload.get("servers"), list):
        items = payload["servers"]
        metadata = payload.get("metadata")
        cursor = metadata.get("nextCursor") if isinstance(metadata, dict) else None
    else:
        raise FormatError(f"{location}: expected a list or an object with a 'servers' list")
    manifests = []
    for n, item in enumerate(items):
        server = item.get("server", item) if isinstance(item, dict) else item
        if _status(item) == "deleted":
            continue
        manifests.append(RawManifest(
            location=f"{location}#servers/{n}",
            kind="server.json",
            text=json.dumps(server),
        ))
    return manifests, cursor if isinstance(cursor, str) and cursor else None


def _status(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    for holder in (item, item.get("server")):
        meta = holder.get("_meta") if isinstance(holder, dict) else None
        official = meta.get(_OFFICIAL_META) if isinstance(meta, dict) else None
        if isinstance(official, dict) and isinstance(official.get("status"), str):
            return official["status"]
    return None
