"""The gateway's own opaque cursors over merged lists."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from vmcp.protocol.errors import INVALID_PARAMS, RpcError

_PREFIX = "vmcp1"


def encode_cursor(kind: str, offset: int) -> str:
    """An opaque cursor pointing at ``offset`` in the merged ``kind`` list."""
    return base64.urlsafe_b64encode(f"{_PREFIX}:{kind}:{offset}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: Any) -> int:
    """The offset a cursor points at; -32602 for anything this gateway did not issue."""
    if cursor is None:
        return 0
    if isinstance(cursor, str):
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            prefix, cursor_kind, offset = raw.split(":")
            if prefix == _PREFIX and cursor_kind == kind and offset.isdigit():
                return int(offset)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            pass
    raise RpcError(INVALID_PARAMS, f"Invalid cursor: {cursor!r}")


def page(
    kind: str, key: str, items: list[dict[str, Any]], cursor: Any, size: int
) -> dict[str, Any]:
    """One page of a merged list, as a list result."""
    offset = decode_cursor(kind, cursor)
    if offset > len(items):
        raise RpcError(INVALID_PARAMS, f"Invalid cursor: {cursor!r} is past the end of the list")
    end = offset + size
    result: dict[str, Any] = {key: items[offset:end]}
    if end < len(items):
        result["nextCursor"] = encode_cursor(kind, end)
    return result
