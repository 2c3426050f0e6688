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
        if self._chunks or self._discarding:
            newline = data.find(b"\n")
            if newline < 0:
                self._hold(data)
                return
            self._hold(data[:newline])
            data = data[newline + 1:]
            if self._discarding:  # the over-long line ends here
                self._discarding = False
            else:
                self._emit(b"".join(self._chunks))
            self._chunks.clear()
            self._size = 0
        # One C-level split per chunk: a chunk often holds many lines (pipelined clients).
        lines = data.split(b"\n")
        tail = lines.pop()
        limit, on_line = self._limit, self._on_line
        for line in lines:
            if len(line) > limit:
                self._on_oversize()
            elif line and not line.isspace():
                on_line(line)
        if tail:
            self._hold(tail)

    def _emit(self, line: bytes) -> None:
        if line and not line.isspace():
            self._on_line(line)

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
