"""JSON-RPC 2.0 framing: encoding, decoding and message builders.

Messages are plain ``dict`` objects end to end: the gateway parses each line once and
serializes it once, and never builds model objects on the hot path.
"""

from __future__ import annotations

import json
from typing import Any

from vmcp.protocol.errors import PARSE_ERROR, RpcError

try:  # orjson (the ``vmcp[fast]`` extra) parses and writes JSON several times faster
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    orjson = None

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def _std_line(message: dict[str, Any]) -> bytes:
    return (_encoder.encode(message) + "\n").encode()


def _std_decode(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RpcError(PARSE_ERROR, f"Parse error: {exc}") from None


if orjson is not None:
    _fast_dumps = orjson.dumps
    _fast_loads = orjson.loads
    _NEWLINE = orjson.OPT_APPEND_NEWLINE

    def encode_line(message: dict[str, Any]) -> bytes:
        """One message as a newline-terminated UTF-8 line (JSON never contains a raw newline)."""
        try:
            return _fast_dumps(message, option=_NEWLINE)
        except TypeError:  # integers beyond 64 bits, which the standard library writes
            return _std_line(message)

    def decode(data: bytes | str) -> Any:
        """Parse one message; raise :class:`RpcError` (-32700) when it is not JSON."""
        try:
            return _fast_loads(data)
        except ValueError:  # not JSON, or JSON orjson refuses (integers beyond 64 bits)
            return _std_decode(data)

else:  # pragma: no cover - exercised where orjson is not installed
    encode_line = _std_line
    decode = _std_decode


def encode(message: dict[str, Any]) -> str:
    """One message as compact JSON text."""
    return encode_line(message)[:-1].decode()


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
