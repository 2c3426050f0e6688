"""The plain-POST path of an HTTP front's connections.

An MCP client POSTs one small JSON message at a time over a keep-alive connection. aiohttp's
connection handler is made for any request: per request its parser builds a URL and a header
table, the connection's task wakes (a waiter future) to start the request's task and wakes
again when it ends, a keep-alive timer is set again after each response. Here a request's
task starts from the bytes that complete it. Measured on the bench (interleaved, the same
machine), the gateway's CPU per ``tools/call`` over HTTP went from 83 to 73 µs at 32
clients, 99 to 89 µs at 8 (81 µs from 94 for a 2026-07-28 call); the user-space instructions
per call stayed the same (callgrind), so what it saves is what they do not count.

A connection starts here. A request this path serves is a *plain POST*: its first line is
``POST <path> HTTP/1.1`` for a path with a POST route, its head fits in :data:`HEAD_LIMIT`
bytes with at most :data:`MAX_HEADERS` fields, and its body is of a declared length of at
most :data:`BODY_LIMIT` bytes (no ``Transfer-Encoding``, ``Content-Encoding``, ``Expect``
or ``Upgrade``). Its head is parsed by llhttp (httptools), the same parser aiohttp builds
on, with its strictness, and it becomes an ordinary aiohttp request: the front's path
(:class:`~vmcp_transport_http.front_app.FrontApp`) and every response, streams included,
work on it as on any other, written by aiohttp's ``StreamWriter``. At the first request
that is not plain, the connection goes, with every byte not yet served, to aiohttp's
handler (:class:`~vmcp_transport_http.front_server.FrontConnection`), which keeps it: an
invalid request, too, is refused there, in aiohttp's words.

Requests on a connection are answered one at a time and in order; what arrives while one
is served waits (reading pauses beyond :data:`PIPELINE_LIMIT` bytes). A connection ends
after a response that does not keep it alive or whose request's body had not all arrived,
after ``idle_timeout`` seconds with no request, when the client stops reading
(:class:`~vmcp_transport_http.send_deadline.SendDeadline`), and on the server's shutdown
(:meth:`close`, :meth:`shutdown`: the request being served finishes first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

import httptools
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http import HttpVersion11
from aiohttp.http_parser import RawRequestMessage
from aiohttp.http_writer import StreamWriter
from aiohttp.streams import StreamReader
from aiohttp.tcp_helpers import tcp_keepalive
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from vmcp_transport_http.send_deadline import SendDeadline

log = logging.getLogger("vmcp.transports.http")

#: bytes a plain POST's head may take, its first line included (aiohttp's longest line)
HEAD_LIMIT = 8190
#: header fields a plain POST may have (aiohttp's default limit)
MAX_HEADERS = 128
#: bytes a plain POST's body may have: below the body reader's high-water mark (twice
#: this), so that it never pauses the connection's reading
BODY_LIMIT = 64 * 1024
#: bytes received ahead of the request being served before reading pauses
PIPELINE_LIMIT = 256 * 1024


def post_routes(paths: list[str]) -> dict[bytes, tuple[str, URL]]:
    """The first line of a plain POST to each of ``paths``, with the path and its URL; a path
    that is not printable ASCII (a client sends it percent-encoded) has none."""
    routes: dict[bytes, tuple[str, URL]] = {}
    for path in paths:
        if path.isascii() and path.isprintable() and " " not in path and "%" not in path:
            routes[f"POST {path} HTTP/1.1".encode()] = (path, URL.build(path=path, encoded=True))
    return routes


class _Head:
    """What llhttp reports of the head it parses: its fields, and whether it is complete (an
    object of its own: the parser holding the connection would make the two a cycle)."""

    __slots__ = ("complete", "fields")

    def __init__(self) -> None:
        self.fields: list[tuple[bytes, bytes]] = []
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        """One field of the head."""
        self.fields.append((name, value))

    def on_headers_complete(self) -> None:
        """The head is complete."""
        self.complete = True


class PostConnection(SendDeadline, BaseProtocol):
    """One connection to a front, its plain POSTs served here (see the module's
    documentation). ``server`` is the front's aiohttp server: its request factory and
    handler serve the requests, its connection table holds this one; ``fallback`` makes
    the aiohttp handler the connection is handed to. The requests it serves take it for
    their handler: what they read of one (transport, peer and socket names, the TLS
    context, flow control) it has."""

    __slots__ = ("_body_left", "_buffer", "_closing", "_fallback", "_head",
                 "_heads", "_idle", "_idle_timeout", "_payload",
                 "_routes", "_send_timeout", "_server", "_serving", "_stall",
                 "_task_handler", "_unsent", "_used", "peername", "sockname",
                 "ssl_context")

    def __init__(self, server: web.Server, routes: Mapping[bytes, tuple[str, URL]],
                 fallback: Callable[[], RequestHandler], *, loop: asyncio.AbstractEventLoop,
                 idle_timeout: float, send_timeout: float) -> None:
        super().__init__(loop)
        self._server = server
        self._routes = routes
        self._fallback = fallback
        self._idle_timeout = idle_timeout
        self._init_deadline(send_timeout)
        self._head = _Head()
        self._heads = httptools.HttpRequestParser(self._head)
        #: bytes received and not yet served (the start of the next request)
        self._buffer = b""
        #: the body of the request being served, while some of it has yet to arrive
        self._payload: StreamReader | None = None
        self._body_left = 0
        self._serving: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._used = 0.0
        self._closing = False
        #: what aiohttp's server looks for on a connection it is told has ended
        self._task_handler = None
        self.ssl_context: Any = None
        self.peername: Any = None
        self.sockname: Any = None

    # -- the connection -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A client connected: it has ``idle_timeout`` seconds to send a request."""
        super().connection_made(transport)
        tcp_keepalive(transport)
        self.ssl_context = transport.get_extra_info("sslcontext")
        self.peername = transport.get_extra_info("peername")
        self.sockname = transport.get_extra_info("sockname")
        self._server.connection_made(cast(RequestHandler, self), cast(asyncio.Transport,
                                                                        transport))
        self._used = self._loop.time()
        self._idle = self._loop.call_at(self._used + self._idle_timeout, self._idle_check)

    def data_received(self, data: bytes) -> None:
        """Bytes from the client: the rest of a body, or requests to serve."""
        if self._body_left:
            data = self._take_body(data)
            if not data:
                return
        buffer = self._buffer + data if self._buffer else data
        self._buffer = buffer
        if self._serving is None:
            self._next()
        elif len(buffer) > PIPELINE_LIMIT and not self._buffer_paused:
            self._pause_reading_for_buffer()

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection ended: a body still arriving fails, the request being served is
        cancelled (as aiohttp's server is set to)."""
        super().connection_lost(exc)
        self._server.connection_lost(cast(RequestHandler, self), exc)
        self._stop_idle()
        if self._payload is not None:  # its body had not all arrived
            self._payload.set_exception(ConnectionResetError("Connection lost"))
            self._payload = None
        if self._serving is not None and self._server.handler_cancellation:
            self._serving.cancel()

    def pause_reading(self) -> None:
        """The body's reader is full: never, a plain POST's body being below its high-water
        mark; were it so, the connection would wait for it."""
        self._reading_paused = True
        self._pause_transport_reading()

    def resume_reading(self, resume_parser: bool = True) -> None:
        """The body's reader has room (it tells on every read; aiohttp's protocol would
        resume the transport each time)."""
        if self._reading_paused:
            self._reading_paused = False
            if not self._buffer_paused:
                self._resume_transport_reading()

    def close(self) -> None:
        """The server is stopping: end the connection now if it is idle, else after the
        response being sent."""
        self._closing = True
        if self._serving is None and self.transport is not None:
            self.transport.close()

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        """The server stops: the request being served has ``timeout`` seconds to finish,
        then as long again once cancelled; the connection ends."""
        self._closing = True
        serving = self._serving
        if serving is not None:
            done, _ = await asyncio.wait({serving}, timeout=timeout)
            if not done:
                serving.cancel()
                await asyncio.wait({serving}, timeout=timeout)
        if self.transport is not None:
            self.transport.close()

    # -- requests -------------------------------------------------------------------------
    def _next(self) -> None:
        """Serve the request the buffer starts with, once its head is complete; hand the
        connection over if it is not a plain POST."""
        buffer = self._buffer
        line_end = buffer.find(b"\r\n")
        if line_end < 0:
            if len(buffer) > HEAD_LIMIT:
                self._hand_over()
            return
        route = self._routes.get(buffer[:line_end])
        if route is None:
            self._hand_over()
            return
        head_end = buffer.find(b"\r\n\r\n", line_end)
        if head_end < 0 or head_end + 4 > HEAD_LIMIT:
            if head_end >= 0 or len(buffer) > HEAD_LIMIT:
                self._hand_over()
            return
        head_end += 4
        head = self._head
        fields = head.fields = []
        head.complete = False
        try:
            self._heads.feed_data(buffer[:head_end])
        except httptools.HttpParserError:
            head.complete = False  # aiohttp's parser refuses it, in its words
        if not head.complete or len(fields) > MAX_HEADERS:
            self._hand_over()
            return
        # llhttp leaves a value's trailing whitespace (not part of it: RFC 9110, 5.5)
        headers = CIMultiDictProxy(CIMultiDict([
            (name.decode("utf-8", "surrogateescape"),
             value.rstrip(b" \t").decode("utf-8", "surrogateescape"))
            for name, value in fields]))
        length = headers.get("Content-Length")
        size = int(length) if length is not None else 0  # digits only: llhttp checked it
        if (size > BODY_LIMIT or "Transfer-Encoding" in headers or "Content-Encoding" in headers
                or "Expect" in headers or "Upgrade" in headers):
            self._hand_over()
            return
        path, url = route
        message = RawRequestMessage("POST", path, HttpVersion11, headers, tuple(fields),
                                    not self._heads.should_keep_alive(), None, False, False,
                                    url)
        payload = StreamReader(self, BODY_LIMIT, loop=self._loop)
        if size:
            self._payload, self._body_left = payload, size
            self._buffer = self._take_body(buffer[head_end:])
        else:
            payload.feed_eof()
            self._buffer = buffer[head_end:]
        self._serving = self._loop.create_task(self._serve(message, payload))

    def _take_body(self, data: bytes) -> bytes:
        """Feed the body of the request being served what ``data`` holds of it; the rest."""
        left = self._body_left
        part = data[:left] if len(data) > left else data
        self._heads.feed_data(part)  # the parser counts it off, to be at the next head
        payload = self._payload
        assert payload is not None
        payload.feed_data(part)
        left -= len(part)
        self._body_left = left
        if not left:
            payload.feed_eof()
            self._payload = None
        return data[len(part):]

    async def _serve(self, message: RawRequestMessage, payload: StreamReader) -> None:
        """Answer one request as aiohttp's handler would; the next one follows."""
        server = self._server
        # (the request's handler: see the class; the loop named: on Python 3.11 looking the
        # running loop up is a getpid() system call)
        request = server.request_factory(message, payload, self,  # type: ignore[arg-type]
                                         StreamWriter(self, self._loop),
                                         asyncio.current_task(self._loop))  # type: ignore[arg-type]
        keep_alive = False
        try:
            try:
                response = await server.request_handler(request)
            except web.HTTPException as exc:
                response = exc
            except Exception:
                log.exception("error handling %s %s", message.method, message.path)
                response = web.HTTPInternalServerError()
                response.force_close()
            await response.prepare(request)
            await response.write_eof()
            keep_alive = bool(response.keep_alive)
        except ConnectionError:
            pass  # the client went away meanwhile
        except Exception:
            log.exception("error answering %s %s", message.method, message.path)
        finally:
            self._served(keep_alive)

    def _served(self, keep_alive: bool) -> None:
        """A response is complete: the connection ends, or serves what came meanwhile."""
        self._serving = None
        transport = self.transport
        if transport is None:
            return
        if not keep_alive or self._closing or self._body_left:
            transport.close()
            return
        self._used = self._loop.time()
        if self._buffer_paused:
            self._resume_reading_for_buffer()
        if self._buffer:
            self._next()

    def _idle_check(self) -> None:
        """End the connection if it served nothing for ``idle_timeout`` seconds."""
        self._idle = None
        if self.transport is None:
            return
        now = self._loop.time()
        due = now + self._idle_timeout if self._serving is not None else (
            self._used + self._idle_timeout)
        if now < due:
            self._idle = self._loop.call_at(due, self._idle_check)
            return
        log.debug("closed a connection idle for %g s", self._idle_timeout)
        self.transport.close()

    def _stop_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _hand_over(self) -> None:
        """Give the connection, with the bytes not yet served, to aiohttp's handler. Only
        between requests: the last response has drained (``write_eof`` waits for it) and
        reading is not paused."""
        transport = self.transport
        assert transport is not None and self._serving is None
        assert not self._paused and not self._buffer_paused
        self._server.connection_lost(cast(RequestHandler, self), None)
        self._stop_idle()
        self._end_stall()
        self.transport = None
        handler = self._fallback()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        buffer, self._buffer = self._buffer, b""
        handler.data_received(buffer)
