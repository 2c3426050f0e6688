"""The WebSocket front: serves MCP clients, one gateway session per connection.

Every check happens in the opening handshake, before a session exists: the path (404), the
``Host`` and ``Origin`` headers against the allow-lists (403; a repeated one is 400), the
auth driver (its status and ``WWW-Authenticate`` challenge) and the ``mcp`` subprotocol
(selected when offered; a client offering no subprotocol is served too, one offering only
others gets 400).

After it, each frame carries one JSON-RPC message (text frames; a binary frame holding UTF-8
JSON is read the same way, malformed JSON is answered with -32700 and the session goes on).
Everything the gateway sends the client (responses, notifications, relayed server-to-client
requests) goes on the same socket through a per-connection queue drained by a writer task, so
the gateway never waits on a slow client; one that stops reading for ``max_queued_messages``
messages is disconnected (1008). A message over ``max_message_bytes`` closes the connection
with 1009; a peer that stops answering pings is closed with 1011; stopping the gateway closes
every connection with 1001.

W3C trace context (``traceparent``/``tracestate``) on the opening handshake is the
connection's: it goes into the ``_meta`` of each request that brings none of its own, so a
client that can set headers but not ``_meta`` still has its calls traced under its span.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, NegotiationError
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from vmcp.auth.base import AuthError, Principal
from vmcp.protocol import jsonrpc
from vmcp.transports.base import FrontHost, FrontSessionHandle, JsonMessage
from vmcp.transports.netsec import HostOriginPolicy, front_url, refuse_insecure_bind
from vmcp.transports.probes import PROBE_PATHS, probe_answer
from vmcp.transports.tracecontext import TRACE_KEYS, meta_from_headers
from vmcp_transport_ws.settings import WsFrontSettings

log = logging.getLogger("vmcp.transports.ws")

SUBPROTOCOL = Subprotocol("mcp")
#: seconds the closing handshake may take, per connection and for the whole server
CLOSE_TIMEOUT = 3.0


class ClientPeer:
    """One client connection as the gateway sees it: :meth:`send` queues, never blocks."""

    __slots__ = ("_max_queued", "_overflowed", "_queue", "_wakeup", "_websocket", "closed")

    def __init__(self, websocket: ServerConnection, max_queued: int) -> None:
        self._websocket = websocket
        self._max_queued = max_queued
        self._queue: deque[str] = deque()
        self._wakeup = asyncio.Event()
        self._overflowed = False
        self.closed = False

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Queue one message for the client (dropped once the connection is closing)."""
        if self.closed:
            return
        if len(self._queue) >= self._max_queued:
            self.closed = self._overflowed = True
            self._queue.clear()
        else:
            self._queue.append(jsonrpc.encode(message))
        self._wakeup.set()

    async def write_loop(self) -> None:
        """Send queued messages in order until the connection closes."""
        queue = self._queue
        websocket = self._websocket
        try:
            while True:
                self._wakeup.clear()
                while queue:
                    await websocket.send(queue.popleft())
                if self._overflowed:
                    log.warning("ws client %s is not reading; disconnected",
                                _remote(websocket))
                    await websocket.close(CloseCode.POLICY_VIOLATION,
                                          "too many messages queued: the client is not reading")
                    return
                await self._wakeup.wait()
        except ConnectionClosed:
            self.closed = True


def _remote(websocket: ServerConnection) -> str:
    address = websocket.remote_address
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


def _single_header(headers: Headers, name: str) -> str | None:
    """The one value of a header, or None when absent.

    :raises ValueError: when the header is repeated (never read as absent: a second
        ``Origin`` must not hide the first).
    """
    values = headers.get_all(name)
    if len(values) > 1:
        raise ValueError(f"Bad Request: more than one {name} header")
    return values[0] if values else None


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    if SUBPROTOCOL in offered:
        return SUBPROTOCOL
    if offered:
        raise NegotiationError(f"unsupported subprotocol; this server speaks {SUBPROTOCOL!r}")
    return None


class WebSocketFront:
    """One listening WebSocket front, serving the gateway ``host`` with ``settings``."""

    def __init__(self, host: FrontHost, settings: WsFrontSettings) -> None:
        self.host = host
        self.settings = settings
        self.policy = HostOriginPolicy.from_settings(settings)
        self._principals: weakref.WeakKeyDictionary[ServerConnection, Principal] = (
            weakref.WeakKeyDictionary()
        )
        #: the trace context of the handshakes that brought one
        self._traces: weakref.WeakKeyDictionary[ServerConnection, dict[str, str]] = (
            weakref.WeakKeyDictionary()
        )

    async def run(self, ready: Callable[[str], Awaitable[None] | None]) -> None:
        """Listen, report the URL (with the real port) to ``ready``, serve until cancelled.

        :raises ConfigError: a non-loopback bind without an auth driver.
        :raises OSError: the address cannot be bound.
        """
        settings = self.settings
        refuse_insecure_bind("ws", settings.host, self.host.auth_required)
        try:
            server = await serve(
                self._serve_connection,
                settings.host,
                settings.port,
                subprotocols=[SUBPROTOCOL],
                select_subprotocol=_select_subprotocol,
                process_request=self._check_request,
                compression="deflate" if settings.compression else None,
                server_header=None,
                ping_interval=settings.ping_interval or None,
                ping_timeout=settings.ping_timeout,
                close_timeout=CLOSE_TIMEOUT,
                max_size=settings.max_message_bytes,
                reuse_port=settings.reuse_port or None,
            )
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise OSError(f"cannot listen on {settings.host}:{settings.port}: {reason}") from exc
        try:
            port = next(iter(server.sockets)).getsockname()[1]
            url = front_url("ws", settings.host, port, settings.path)
            log.info("listening on %s", url)
            result = ready(url)
            if inspect.isawaitable(result):
                await result
            await server.wait_closed()  # returns only once closed: serve until cancelled
        finally:
            await _shut_down(server)

    async def _check_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """The opening-handshake checks; a response refuses the connection."""
        path = urlsplit(request.path).path
        if path != self.settings.path and path not in PROBE_PATHS:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        try:
            host_header = _single_header(request.headers, "Host")
            origin_header = _single_header(request.headers, "Origin")
        except ValueError as exc:
            return connection.respond(HTTPStatus.BAD_REQUEST, f"{exc}\n")
        refusal = self.policy.refusal(host_header, origin_header)
        if refusal is not None:
            log.warning("refused ws connection from %s: %s", _remote(connection), refusal)
            return connection.respond(HTTPStatus.FORBIDDEN, f"{refusal}\n")
        if path != self.settings.path:  # a health probe, answered without authentication
            status, text = probe_answer(self.host, path)
            response = connection.respond(status, text)  # text/plain already
            response.headers["Cache-Control"] = "no-store"
            return response
        if self.host.draining:  # a new connection is new work: another instance takes it
            response = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE,
                                          "Service Unavailable: this gateway is stopping\n")
            response.headers["Retry-After"] = "1"
            return response
        try:
            principal = await self.host.authenticate(request.headers)
        except AuthError as exc:
            response = connection.respond(exc.status, f"{exc or 'Unauthorized'}\n")
            if exc.www_authenticate:  # the RFC 6750 challenge, with the resource metadata URL
                response.headers["WWW-Authenticate"] = exc.www_authenticate
            return response
        self._principals[connection] = principal
        if "traceparent" in request.headers:
            self._traces[connection] = {key: request.headers[key] for key in TRACE_KEYS
                                        if key in request.headers}
        return None

    async def _serve_connection(self, websocket: ServerConnection) -> None:
        """One client: a gateway session fed from the socket, answered through the peer."""
        await self.host.started()  # a client connecting during start-up waits for the mounts
        peer = ClientPeer(websocket, self.settings.max_queued_messages)
        session = self.host.open_session(peer, self._principals.pop(websocket, None))
        writer = asyncio.get_running_loop().create_task(peer.write_loop())
        log.debug("ws client %s connected", _remote(websocket))
        trace = self._traces.pop(websocket, None)
        try:
            while True:
                data = await websocket.recv(decode=False)
                if trace is None:
                    session.handle_bytes(data)
                else:
                    _handle_traced(session, data, trace)
        except ConnectionClosed as exc:
            log.debug("ws client %s left: %s", _remote(websocket), exc)
        finally:
            peer.closed = True
            writer.cancel()
            await session.aclose()


def _handle_traced(session: FrontSessionHandle, data: bytes | str,
                   trace: dict[str, str]) -> None:
    """Hand one frame to the session with the connection's trace context in the ``_meta`` of
    its requests (a frame that is not JSON goes as it came: the session answers it)."""
    try:
        payload = json.loads(data)
    except (ValueError, RecursionError):
        session.handle_bytes(data if isinstance(data, bytes) else data.encode())
        return
    if isinstance(payload, dict):
        payload = meta_from_headers(payload, trace)
    elif isinstance(payload, list):
        payload = [meta_from_headers(m, trace) if isinstance(m, dict) else m for m in payload]
    session.handle_bytes(json.dumps(payload, ensure_ascii=False).encode())


async def _shut_down(server: Server) -> None:
    """Close every connection with 1001 and stop listening, within a bounded time."""
    server.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), CLOSE_TIMEOUT * 2)
