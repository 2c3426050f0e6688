"""Newline-delimited message framing on asyncio transports, without a task per message.

:class:`LineSplitter` cuts incoming bytes into lines and hands each to a callback as soon
as it is complete; :class:`LineWriter` encodes messages and writes those produced in one
turn of the event loop together: one system call per turn, or per 16 messages when a turn
produces many (so the reader at the other end can start on them while this turn goes on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import INTERNAL_ERROR, RpcError
from vmcp.transports.base import JsonMessage

log = logging.getLogger("vmcp.transports.lines")


class LineSplitter:
    """Cuts a byte stream into lines (without the newline); blank lines are skipped.

    A line longer than ``limit`` bytes is dropped; ``on_oversize`` is called once for it.
    A callback that raises is logged and costs only its own line: the lines after it, and
    the framing of the stream, go on unharmed.
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
            line = b"".join(self._chunks)
            self._chunks.clear()
            self._size = 0
            if self._discarding:  # the over-long line ends here
                self._discarding = False
            else:
                self._emit(line)
        # One C-level split per chunk: a chunk often holds many lines (pipelined clients).
        lines = data.split(b"\n")
        tail = lines.pop()
        limit, on_line = self._limit, self._on_line
        for line in lines:
            try:
                if len(line) > limit:
                    self._on_oversize()
                elif line and not line.isspace():
                    on_line(line)
            except Exception:
                log.exception("a line's consumer failed; the line is dropped")
        if tail:
            self._hold(tail)

    def _emit(self, line: bytes) -> None:
        if line and not line.isspace():
            try:
                self._on_line(line)
            except Exception:
                log.exception("a line's consumer failed; the line is dropped")

    def _hold(self, data: bytes) -> None:
        if self._discarding:
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > self._limit:
            self._chunks.clear()
            self._size = 0
            self._discarding = True
            try:
                self._on_oversize()
            except Exception:
                log.exception("a line's consumer failed on an over-long line")


#: bytes a stream front's client may leave unread before notifications to it are dropped
NOTIFICATION_BUDGET = 16 << 20
#: messages queued in one turn that are written without waiting for the turn to end
_EAGER_COUNT = 16
#: a message this large is written at once, with whatever is queued before it
_EAGER_BYTES = 64 * 1024


def _unwritable(message: JsonMessage, exc: jsonrpc.EncodeError) -> bytes | None:
    """What is written instead of a message that cannot be encoded: an error response when
    it names a request, else nothing (it is logged)."""
    request_id = message.get("id") if "method" not in message else None
    log.error("a message could not be encoded (%s); %s", exc,
              "answered with an error" if request_id is not None else "dropped")
    if not isinstance(request_id, str | int):
        return None
    err = RpcError(INTERNAL_ERROR, f"Internal error: the answer could not be encoded ({exc})")
    return jsonrpc.encode_line(jsonrpc.error(request_id, err))


class LineWriter:
    """Writes messages as lines: the first of an event-loop turn at once, the others of
    that turn together (in groups of up to 16, and a large message at once).

    It is also the :class:`~vmcp.transports.base.FrontPeer` of a stream front (a stream has
    one way to the client, so what a message relates to changes nothing). There, with a
    ``notification_budget``, a client that leaves more than that many bytes unread loses the
    notifications meant for it (progress, log lines, list changes) until it catches up: a
    backend's flood would otherwise grow the gateway's buffer without bound. Requests and
    responses always go (their number is bounded: a client that does not read is not read
    either, see the stdio front).
    """

    __slots__ = ("_budget", "_dropped", "_loop", "_pending", "_scheduled", "transport")

    def __init__(self, transport: asyncio.WriteTransport,
                 notification_budget: int | None = None) -> None:
        self.transport = transport
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        self._scheduled = False
        self._budget = notification_budget
        self._dropped = 0

    def write(self, message: JsonMessage, related_to: Any = None) -> None:
        """Write one message: the first of an event-loop turn at once, those that follow in
        the same turn together at its end."""
        if self._budget is not None and "id" not in message and self._behind():
            return
        try:
            line = jsonrpc.encode_line(message)
        except jsonrpc.EncodeError as exc:
            line = _unwritable(message, exc)
            if line is None:
                return
        if not self._scheduled:  # so nothing is pending either
            # A lone message (a request on its way to a backend, the answer on its way back:
            # the common case) is not held back behind the rest of the turn's work, which
            # would add that work to every call's latency.
            self._scheduled = True
            self._loop.call_soon(self.flush)
            if not self.transport.is_closing():
                self.transport.write(line)
            return
        pending = self._pending
        pending.append(line)
        # A turn that handles a large chunk of pipelined input would otherwise hold all its
        # output back until it ends, leaving the process at the other end idle meanwhile.
        if len(pending) >= _EAGER_COUNT or len(line) >= _EAGER_BYTES:
            self._write_out()  # the flush scheduled stays so, for what comes next

    send = write  # the FrontPeer method

    def _behind(self) -> bool:
        """Whether the client is past the budget (a notification for it is then dropped)."""
        unread = self.transport.get_write_buffer_size()
        if unread > self._budget:  # type: ignore[operator]  # only called with a budget
            self._dropped += 1
            if self._dropped == 1:
                log.warning("the client left %d bytes unread: notifications to it are dropped "
                            "until it catches up", unread)
            return True
        if self._dropped:
            log.warning("the client caught up; %d notifications to it were dropped",
                        self._dropped)
            self._dropped = 0
        return False

    def flush(self) -> None:
        """Write what is queued now."""
        self._scheduled = False
        self._write_out()

    def _write_out(self) -> None:
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
