"""A JSON reply read as it arrives: one JSON-RPC message, or several, a line each.

A Streamable HTTP server answers a request with ``application/json`` (one message) or
``text/event-stream``. Some servers (the conformance suite's own reference server among them)
stream ``application/json`` too: the request's notifications, then its response, or a
``subscriptions/listen`` stream's notifications for as long as it lasts, each on its own
line. :func:`iter_json_messages` yields every complete message of such a body as soon as
its last byte arrives, so neither a listen stream nor a message sent before a slow result
waits for the body to end; a body holding one message over several lines (pretty-printed)
is still one message.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from vmcp.protocol.jsonrpc import DecodeError, decode


class JsonLinesError(ValueError):
    """The body broke off inside a message, or a message outgrew the limit."""


async def iter_json_messages(chunks: AsyncIterable[bytes], max_message_bytes: int
                             ) -> AsyncIterator[Any]:
    """The decoded JSON values of a body, in order, each once its text is complete.

    A value is tried at each line end that closes an object or array on a line that starts
    unindented (a proper prefix of a JSON text is never valid JSON, so the first such parse
    that works is exactly one message), and at the end of the body. A single line that
    cannot be decoded is yielded as its raw bytes, for the caller to refuse.

    :raises JsonLinesError: when the body ends inside a value or one outgrows
        ``max_message_bytes``.
    """
    pending = bytearray()
    async for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            pending += chunk[start:end + 1]
            start = end + 1
            if _may_end_a_value(pending):
                value = _complete(pending)
                if value is _INCOMPLETE and pending.count(b"\n") == 1:
                    value = bytes(pending)  # a line of its own that is no JSON: as it is
                if value is not _INCOMPLETE:
                    pending.clear()
                    yield value
                    continue
            _check_size(pending, max_message_bytes)
        pending += chunk[start:]
        _check_size(pending, max_message_bytes)
    if pending.strip():
        value = _complete(pending)
        if value is _INCOMPLETE:
            raise JsonLinesError("the reply ended inside a JSON message")
        yield value


_INCOMPLETE: Any = object()


def _may_end_a_value(pending: bytearray) -> bool:
    """Whether ``pending``'s last line starts unindented and ends with ``}`` or ``]``."""
    text = pending.rstrip()
    if not text or text[-1] not in b"}]":
        return False
    line_start = text.rfind(b"\n") + 1
    return text[line_start:line_start + 1] not in (b" ", b"\t")


def _complete(pending: bytearray) -> Any:
    """The value ``pending`` holds, or :data:`_INCOMPLETE` (blank text counts as none)."""
    if not pending.strip():
        return _INCOMPLETE
    try:
        return decode(bytes(pending))
    except DecodeError:
        return _INCOMPLETE


def _check_size(pending: bytearray, limit: int) -> None:
    if len(pending) > limit:
        raise JsonLinesError(f"a reply message larger than {limit} bytes")
