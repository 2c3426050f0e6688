"""Newline-delimited message framing on asyncio transports, without a task per message.

:class:`LineSplitter` cuts incoming bytes into lines and hands each to a callback as soon
as it is complete; :class:`LineWriter` encodes messages and writes everything produced in
one turn of the event loop with a single system call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from vmcp.protocol import jsonrpc
from vmcp.transports.base import JsonMessage


class LineSplitter:
    """Cuts a byte stream into lines (without the newline); blank lines are skipped.

    A line longer than ``limit`` bytes is dropped; ``on_oversize`` is called once for it.
    """

    __slots__ = ("_chunks", "_discarding", "_limit", "_on_line", "_on_oversize", "_size")

    def __init__(
        self, limit: int, on_line: Callable[[bytes], None], on_oversize: Callable[[], None]
    ) -> None:
        self._limit = limit
        self._on_line = on_line
        self._on_oversize = on_oversize
        self._chunks: list[bytes] = []
        self._size = 0
        self._discarding = False

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream."""
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                if start < len(data):
                    self._hold(data[start:] if start else data)
                return
            piece = data[start:newline] if start or newline < len(data) - 1 else data[:-1]
            start = newline + 1
            if self._chunks or self._discarding:
                self._hold(piece)
                if self._discarding:  # the over-long line ends here
                    self._discarding = False
                    continue
                piece = b"".join(self._chunks)
                self._chunks.clear()
                self._size = 0
            elif len(piece) > self._limit:
                self._on_oversize()
                continue
            if piece and not piece.isspace():
                self._on_line(piece)

    def _hold(self, data: bytes) -> None:
        if self._discarding:
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > self._limit:
            self._chunks.clear()
            self._size = 0
            self._discarding = True
            self._on_oversize()


class LineWriter:
    """Writes messages as lines; those written in one event-loop turn go out together."""

    __slots__ = ("_loop", "_pending", "_scheduled", "transport")

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        self._scheduled = False

    def write(self, message: JsonMessage) -> None:
        """Queue one message; it is written at the end of this event-loop turn."""
        self._pending.append(jsonrpc.encode_line(message))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is queued now."""
        self._scheduled = False
        pending = self._pending
        if not pending or self.transport.is_closing():
            pending.clear()
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self.transport.write(data)

    def close(self) -> None:
        """Write what is queued, then close."""
        self.flush()
        with contextlib.suppress(Exception):
            self.transport.close()
