"""Which arguments of each tool a caller's ``Mcp-Param-*`` headers must mirror.

The answer is in the tool's input schema as the caller's ``tools/list`` shows it (the
gateway's names, the caller's view), so the front asks the gateway for that list on the
request's own session, walking every page. It keeps what it learnt for as long as the list's
``ttlMs`` says, per caller when its ``cacheScope`` is ``private``, just as a client may keep
the list itself; a list that may not be kept (``ttlMs`` 0) is asked for again every time.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

from vmcp.auth.base import Principal
from vmcp.protocol import jsonrpc
from vmcp.protocol.eras import CLIENT_CAPABILITIES, CLIENT_INFO, PROTOCOL_VERSION
from vmcp.transports.base import StatelessHandle
from vmcp_transport_http.modern_exchange import Exchange, response_of
from vmcp_transport_http.modern_headers import ParamHeaders, param_headers

log = logging.getLogger("vmcp.transports.http")

#: the id of the ``tools/list`` requests of a lookup (they run on the request's own session
#: before the request itself, so no client id can collide)
LOOKUP_ID = "vmcp/tool-schema"
#: most pages walked; a list that does not end by then leaves the headers unchecked
MAX_PAGES = 100
#: callers whose private lists are kept at once (the least recently used goes first)
MAX_SCOPES = 1024

#: tool name -> what its headers mirror (None: its annotations are invalid, nothing checked)
Catalog = dict[str, ParamHeaders | None]


class ParamLookup:
    """What each tool's headers mirror, from the caller's ``tools/list``, kept by its TTL."""

    def __init__(self) -> None:
        #: None (a public list) or a principal -> (deadline, catalog)
        self._kept: OrderedDict[Principal | None, tuple[float, Catalog]] = OrderedDict()

    async def declared(self, handle: StatelessHandle, exchange: Exchange, principal: Principal,
                       name: str, meta: dict[str, Any]) -> ParamHeaders | None:
        """What the tool ``name`` mirrors into headers for this caller; None when it is not
        listed or its annotations are invalid (then nothing is checked: a conforming client
        drops such a tool, and the gateway refuses a call to a tool it does not know)."""
        now = time.monotonic()
        for scope in (None, principal):
            kept = self._kept.get(scope)
            if kept is not None:
                if kept[0] > now:
                    self._kept.move_to_end(scope)
                    return kept[1].get(name)
                del self._kept[scope]
        catalog, ttl_ms, private = await _walk(handle, exchange, meta)
        if ttl_ms > 0:
            self._kept[principal if private else None] = (now + ttl_ms / 1000, catalog)
            while len(self._kept) > MAX_SCOPES:
                self._kept.popitem(last=False)
        return catalog.get(name)


async def _walk(handle: StatelessHandle, exchange: Exchange, meta: dict[str, Any]
                ) -> tuple[Catalog, float, bool]:
    """Every listed tool's headers, the least ``ttlMs`` of the pages, and whether any page
    was ``private``. A failed or endless walk yields what it found, kept for no time."""
    envelope = {key: meta[key] for key in (PROTOCOL_VERSION, CLIENT_CAPABILITIES, CLIENT_INFO)
                if key in meta}
    params: dict[str, Any] = {"_meta": envelope}
    catalog: Catalog = {}
    ttl_ms: float = float("inf")
    private = False
    for _ in range(MAX_PAGES):
        stream = exchange.expect(LOOKUP_ID)
        handle.handle(jsonrpc.request(LOOKUP_ID, "tools/list", params))
        result = (await response_of(stream))[0].get("result")
        if not isinstance(result, dict):
            return catalog, 0, private
        tools = result.get("tools")
        for tool in tools if isinstance(tools, list) else ():
            if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                catalog[tool["name"]] = param_headers(tool.get("inputSchema"))
        ttl = result.get("ttlMs")
        ttl_ms = min(ttl_ms, ttl if isinstance(ttl, int | float) and ttl > 0 else 0)
        private = private or result.get("cacheScope") != "public"
        cursor = result.get("nextCursor")
        if not isinstance(cursor, str):
            return catalog, ttl_ms, private
        params = {"_meta": envelope, "cursor": cursor}
    log.warning("tools/list did not end within %d pages: Mcp-Param headers unchecked",
                MAX_PAGES)
    return {}, 0, private
