"""aiohttp's low-level server for an HTTP front, with a deadline for clients that stop reading.

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
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("vmcp.transports.http")


class FrontConnection(RequestHandler):
    """aiohttp's handler of one connection, aborted once its client has taken nothing of a
    response for ``send_timeout`` seconds."""

    __slots__ = ("_send_timeout", "_stall", "_unsent")

    def __init__(self, manager: web.Server, *, send_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._send_timeout = send_timeout
        self._stall: asyncio.TimerHandle | None = None
        #: bytes waiting to be sent when the current period of the stall began
        self._unsent = 0

    def pause_writing(self) -> None:
        """The client's side is full: it has ``send_timeout`` seconds to take some."""
        super().pause_writing()
        if self._stall is None:
            self._watch()

    def _watch(self) -> None:
        transport = self.transport
        self._unsent = transport.get_write_buffer_size() if transport is not None else 0
        self._stall = self._loop.call_later(self._send_timeout, self._check)

    def resume_writing(self) -> None:
        """The client read again."""
        super().resume_writing()
        self._end_stall()

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection ended (the stall's timer goes with it)."""
        self._end_stall()
        super().connection_lost(exc)

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


class FrontServer(web.Server):
    """aiohttp's low-level server whose connections are :class:`FrontConnection`."""

    def __init__(self, *args: Any, send_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._send_timeout = send_timeout

    def __call__(self) -> RequestHandler:
        """The handler of a new connection."""
        return FrontConnection(self, loop=self._loop, send_timeout=self._send_timeout,
                               **self._kwargs)
