"""Server-Sent Events: writing events (front) and reading them incrementally (back).

Follows the WHATWG event-stream format: ``\\n``, ``\\r\\n`` or ``\\r`` end a line, a blank line
ends an event, lines starting with ``:`` are comments, fields are ``event``, ``data``, ``id``
and ``retry``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

#: a comment line: keeps intermediaries from closing an idle stream
KEEPALIVE = b": keep-alive\n\n"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def encode_event(
    data: str,
    *,
    event: str | None = "message",
    event_id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """One event in wire form; multi-line data becomes several ``data:`` lines.

    ``retry`` (milliseconds) tells the client how long to wait before reconnecting.
    """
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def message_event(line: bytes, event_id: str | None) -> bytes:
    """A ``message`` event carrying one line of JSON (``line`` ends with its only newline).

    The same bytes as :func:`encode_event` gives, without splitting lines: compact JSON
    never contains a line break.
    """
    if event_id is None:
        return b"event: message\ndata: " + line + b"\n"
    return b"id: " + event_id.encode() + b"\nevent: message\ndata: " + line + b"\n"


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One received event; ``data`` may be empty (a priming event carries only an id)."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class EventTooLarge(ValueError):
    """An event grew beyond the parser's limit (a broken or hostile server)."""


class SseParser:
    """Turns chunks of bytes into :class:`ServerSentEvent` objects."""

    def __init__(self, max_event_bytes: int) -> None:
        self._max = max_event_bytes
        self._buffer = bytearray()
        self._scanned = 0
        self._first = True
        self._reset()

    def _reset(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._has_fields = False
        self._event_size = 0

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Take the next chunk; return the events it completed."""
        self._buffer += chunk
        events: list[ServerSentEvent] = []
        while True:
            end, skip = self._line_end()
            if end < 0:
                break
            line = bytes(self._buffer[:end])
            del self._buffer[: end + skip]
            self._scanned = 0
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        if len(self._buffer) + self._event_size > self._max:
            raise EventTooLarge(f"SSE event larger than {self._max} bytes")
        return events

    def _line_end(self) -> tuple[int, int]:
        """Where the first complete line ends and how long its terminator is; -1 if none."""
        buffer = self._buffer
        lf = buffer.find(b"\n", self._scanned)
        cr = buffer.find(b"\r", self._scanned, lf if lf >= 0 else len(buffer))
        if cr < 0:
            if lf < 0:
                self._scanned = len(buffer)
            return lf, 1
        if cr + 1 == len(buffer):
            self._scanned = cr  # a CR at the end may be the first half of CRLF
            return -1, 0
        return cr, 2 if buffer[cr + 1] == 0x0A else 1

    def _line(self, line: str) -> ServerSentEvent | None:
        if self._first:
            self._first = False
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        self._event_size += len(line) + 1
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
        elif field == "retry" and value.isdigit():
            self._retry = int(value)
        else:
            return None
        self._has_fields = True
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event = None
        if self._has_fields:
            event = ServerSentEvent(
                event=self._event or "message",
                data="\n".join(self._data),
                id=self._id,
                retry=self._retry,
            )
        self._reset()
        return event


async def iter_events(
    chunks: AsyncIterable[bytes], max_event_bytes: int
) -> AsyncIterator[ServerSentEvent]:
    """The events of a byte stream, in order."""
    parser = SseParser(max_event_bytes)
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
