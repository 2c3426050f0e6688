"""One audit record: what a routed call was, who made it, and how it ended."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from vmcp.protocol.errors import RpcError
from vmcp.routing.middleware import RoutedRequest

#: the parameter naming what a method acts on
_TARGETS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri",
            "resources/subscribe": "uri", "resources/unsubscribe": "uri"}


def digest(value: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``value`` (sorted keys, no spaces), so equal
    arguments give equal digests and the arguments themselves are never written."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def outcome_of(result: dict[str, Any] | None, error: BaseException | None) -> str:
    """``ok``, ``tool_error`` (a result with ``isError``), ``error <code>`` or ``cancelled``."""
    if error is None:
        return "tool_error" if result is not None and result.get("isError") else "ok"
    if isinstance(error, RpcError):
        return f"error {error.code}"
    if isinstance(error, TimeoutError):
        return "timeout"
    return "cancelled" if isinstance(error, asyncio.CancelledError) else "error"


def build_record(
    request: RoutedRequest, started_at: float, latency: float, outcome: str
) -> dict[str, Any]:
    """The record of one call; ``started_at`` is epoch seconds, ``latency`` seconds."""
    params = request.params
    principal = request.caller.principal
    key = _TARGETS.get(request.method)
    target = params.get(key) if key is not None else None
    arguments = params.get("arguments")
    return {
        "time": datetime.fromtimestamp(started_at, UTC).isoformat(timespec="milliseconds"),
        "caller": principal.name if principal is not None else None,
        "persona": principal.persona if principal is not None else None,
        "session": request.caller.session_id,
        "request_id": request.request_id,
        "mount": request.mount_id,
        "method": request.method,
        "tool": target if request.method == "tools/call" else None,
        "target": target if request.method != "tools/call" else None,
        "arguments": digest(arguments) if arguments is not None else None,
        "outcome": outcome,
        "latency_ms": round(latency * 1000, 3),
        "approval": request.approval,
        "replica": request.notes.replica,
    }
