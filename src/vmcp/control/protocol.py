"""The control protocol: one JSON object per line each way, one response per request.

Request: ``{"op": "<operation>", "args": {...}}``. Response: ``{"ok": true, "result": ...}``
or ``{"ok": false, "error": "<message>", "problems": ["<located problem>", ...]}``.
A connection may carry several requests in turn, or, after ``{"op": "mcp"}`` is answered,
MCP messages (newline-delimited JSON-RPC) both ways until it closes.
"""

from __future__ import annotations

import json
from typing import Any

#: the longest line either side accepts
MAX_LINE = 16 * 1024 * 1024
#: the request that turns a connection into an MCP session (:mod:`vmcp.control.mcpsocket`)
MCP_OP = "mcp"


class ControlError(Exception):
    """An operation was refused or failed; ``problems`` holds located details (config errors)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def request(op: str, args: dict[str, Any] | None = None) -> bytes:
    """The line asking for ``op``."""
    return encode({"op": op, "args": args or {}})


def success(result: Any) -> bytes:
    """The line answering with ``result``."""
    return encode({"ok": True, "result": result})


def failure(err: ControlError) -> bytes:
    """The line reporting ``err``."""
    return encode({"ok": False, "error": err.message, "problems": err.problems})


def result_of(line: bytes) -> Any:
    """The result a response line carries.

    :raises ControlError: the response reports a failure, or is not a response at all.
    """
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ControlError(f"bad response from the gateway: {exc}") from exc
    if not isinstance(message, dict) or "ok" not in message:
        raise ControlError("bad response from the gateway")
    if not message["ok"]:
        raise ControlError(str(message.get("error", "failed")), list(message.get("problems", [])))
    return message.get("result")
