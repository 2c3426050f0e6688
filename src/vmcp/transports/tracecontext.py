"""W3C trace context between HTTP headers and MCP ``_meta``.

A front client may send ``traceparent``/``tracestate`` as HTTP headers; MCP carries them in
a request's ``_meta``. A network front moves the headers into ``_meta`` (unless the request
has its own), and an HTTP back client sends the ``_meta`` ones as headers, so the trace goes
on across a hop whichever form each side reads. Nothing is parsed or checked here: the
values travel as they came.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TRACE_KEYS = ("traceparent", "tracestate")


def meta_from_headers(message: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """``message`` with the headers' trace context in its ``_meta`` when it is a request
    without one of its own (the message itself is left unchanged)."""
    params = message.get("params")
    if "method" not in message or "id" not in message or (
            params is not None and not isinstance(params, dict)):
        return message
    meta = (params or {}).get("_meta")
    if meta is not None and (not isinstance(meta, dict) or "traceparent" in meta):
        return message
    context = {key: headers[key] for key in TRACE_KEYS if key in headers}
    return {**message, "params": {**(params or {}), "_meta": {**(meta or {}), **context}}}


def headers_from_meta(message: Mapping[str, Any]) -> dict[str, str] | None:
    """The trace context of a request's ``_meta`` as HTTP headers, or None when it has none."""
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("traceparent"), str):
        return None
    return {key: meta[key] for key in TRACE_KEYS if isinstance(meta.get(key), str)}
