"""A deadline for an HTTP front's clients that stop reading.

A client that sends requests but reads no answers fills the socket's buffers; aiohttp then
waits, without any bound, for room to write the rest (a large result, a stream's events).
Meanwhile the request holds its turn among the POSTs handled at once, so a few such
clients lock every other POST out. Here each connection times its stalls: once it has
taken nothing for ``send_timeout`` seconds it is aborted, the request being answered ends
and its turn is free. A slow client that keeps taking some is not a stalled one (nginx's
``send_timeout`` means the same). The timer runs only while the transport is paused (its
buffer over the high-water mark), so a connection whose client keeps up never pays for one.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("vmcp.transports.http")


class SendDeadline:
    """What a front's connection adds to its protocol (an aiohttp ``BaseProtocol``): it is
    aborted once its client has taken nothing of a response for ``send_timeout`` seconds.
    The protocol's class names the three slots this one uses."""

    __slots__ = ()

    _loop: asyncio.AbstractEventLoop
    _paused: bool
    transport: asyncio.Transport | None
    _send_timeout: float
    _stall: asyncio.TimerHandle | None
    #: bytes waiting to be sent when the current period of the stall began
    _unsent: int

    def _init_deadline(self, send_timeout: float) -> None:
        """Set the deadline's state up (from the protocol's ``__init__``)."""
        self._send_timeout = send_timeout
        self._stall = None
        self._unsent = 0

    def pause_writing(self) -> None:
        """The client's side is full: it has ``send_timeout`` seconds to take some."""
        super().pause_writing()  # type: ignore[misc]
        if self._stall is None:
            self._watch()

    def _watch(self) -> None:
        transport = self.transport
        self._unsent = transport.get_write_buffer_size() if transport is not None else 0
        self._stall = self._loop.call_later(self._send_timeout, self._check)

    def resume_writing(self) -> None:
        """The client read again."""
        super().resume_writing()  # type: ignore[misc]
        self._end_stall()

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection ended (the stall's timer goes with it)."""
        self._end_stall()
        super().connection_lost(exc)  # type: ignore[misc]

    def _end_stall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _check(self) -> None:
        self._stall = None
        transport = self.transport
        if transport is None or not self._paused:
            return
        if transport.get_write_buffer_size() < self._unsent:  # it took some: still a reader
            self._watch()
            return
        log.warning("dropped a connection from %s: its client read nothing for %g s",
                    transport.get_extra_info("peername"), self._send_timeout)
        transport.abort()
