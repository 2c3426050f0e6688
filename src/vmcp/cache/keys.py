"""Cache keys: the mount, the method, the caller's scope and the parameters, canonically.

A key reads ``v1|<mount>|<method>|<subject>|<fingerprint>|<scope>|<digest>``:

* ``subject`` is a digest of the URI for ``resources/read`` (so one resource's entries can
  be dropped when it is updated) and empty otherwise;
* ``fingerprint`` is a digest of how the mount reaches its backend, so a mount whose
  command, URL or environment changed never reuses what the old one answered;
* ``scope`` is ``*`` for results every caller may share, ``-`` for a caller without a
  persona, and ``p=<persona>`` otherwise: entries never cross personas; a result the backend
  marks ``cacheScope: "private"`` is kept under ``a=<digest of the principal>`` (``a-``
  without one): it never crosses auth contexts, even of one persona;
* ``digest`` is a digest of the parameters as sorted-key JSON, without what only names this
  one request in ``_meta``: its progress token and its W3C trace context.

Invalidation drops prefixes of that layout (:func:`mount_prefix`, :func:`method_prefix`,
:func:`resource_prefix`); the mount id alphabet (``[a-z0-9-]``) cannot contain ``|``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from vmcp.config import MountConfig
from vmcp.transports.tracecontext import TRACE_KEYS

VERSION = "v1"
SEP = "|"
PUBLIC_SCOPE = "*"
NO_PERSONA_SCOPE = "-"
#: ``_meta`` keys that differ from one request to the next and never change the answer
PER_REQUEST_META = frozenset({"progressToken", *TRACE_KEYS})
#: the mount settings that decide which backend answers (and so what it answers)
BACKEND_FIELDS = frozenset({"transport", "command", "args", "env", "cwd", "url", "urls",
                            "headers"})


def digest(data: bytes | str) -> str:
    """A short hex digest (128 bits of BLAKE2b)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def canonical_params(params: dict[str, Any]) -> bytes:
    """``params`` as sorted-key compact JSON, without the :data:`PER_REQUEST_META` keys."""
    meta = params.get("_meta")
    if isinstance(meta, dict) and not PER_REQUEST_META.isdisjoint(meta):
        rest = {key: value for key, value in meta.items() if key not in PER_REQUEST_META}
        params = {key: value for key, value in params.items() if key != "_meta"}
        if rest:
            params["_meta"] = rest
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


def fingerprint(mount: MountConfig) -> str:
    """A digest of the settings that decide which backend a mount reaches."""
    settings = mount.model_dump(mode="json", include=set(BACKEND_FIELDS))
    return digest(json.dumps(settings, sort_keys=True))[:16]


def scope(persona: str | None, public: bool) -> str:
    """The key part that keeps callers with different personas apart."""
    if public:
        return PUBLIC_SCOPE
    return NO_PERSONA_SCOPE if persona is None else f"p={persona}"


def private_scope(principal: str | None) -> str:
    """The key part that keeps a ``private`` result to one auth context (principal)."""
    return "a-" if principal is None else f"a={digest(principal)}"


def subject(method: str, params: dict[str, Any]) -> str:
    """What one entry is about, for targeted invalidation: the URI of a read."""
    if method == "resources/read":
        uri = params.get("uri")
        return digest(uri) if isinstance(uri, str) else ""
    return ""


def entry_key(mount_id: str, fp: str, method: str, params: dict[str, Any], scope_: str) -> str:
    """The key of one cached result."""
    return SEP.join((VERSION, mount_id, method, subject(method, params), fp, scope_,
                     digest(canonical_params(params))))


def mount_prefix(mount_id: str) -> str:
    """The prefix of every entry of one mount."""
    return f"{VERSION}{SEP}{mount_id}{SEP}"


def method_prefix(mount_id: str, method: str) -> str:
    """The prefix of every entry of one method of one mount."""
    return f"{VERSION}{SEP}{mount_id}{SEP}{method}{SEP}"


def resource_prefix(mount_id: str, uri: str) -> str:
    """The prefix of every cached read of one URI of one mount."""
    return f"{method_prefix(mount_id, 'resources/read')}{digest(uri)}{SEP}"
