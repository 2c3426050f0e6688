"""JSON-RPC 2.0 framing: encoding, decoding and message builders.

Messages are plain ``dict`` objects end to end: the gateway parses each line once and
serializes it once, and never builds model objects on the hot path.
"""

from __future__ import annotations

import json
from typing import Any

from vmcp.protocol.errors import PARSE_ERROR, RpcError

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_decode = json.loads


def encode_line(message: dict[str, Any]) -> bytes:
    """One message as a newline-terminated UTF-8 line (JSON never contains a raw newline)."""
    return (_encoder.encode(message) + "\n").encode()


def encode(message: dict[str, Any]) -> str:
    """One message as compact JSON text."""
    return _encoder.encode(message)


def decode(data: bytes | str) -> Any:
    """Parse one message; raise :class:`RpcError` (-32700) when it is not JSON."""
    try:
        return _decode(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RpcError(PARSE_ERROR, f"Parse error: {exc}") from None


def request(request_id: Any, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build a request."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build a notification."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def result(request_id: Any, value: dict[str, Any]) -> dict[str, Any]:
    """Build a success response."""
    return {"jsonrpc": "2.0", "id": request_id, "result": value}


def error(request_id: Any, err: RpcError) -> dict[str, Any]:
    """Build an error response."""
    return {"jsonrpc": "2.0", "id": request_id, "error": err.to_error()}
