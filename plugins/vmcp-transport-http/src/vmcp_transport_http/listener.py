"""The HTTP fronts' listening sockets, accepting every waiting connection at once.

libuv, under uvloop, accepts one connection per turn of a busy loop: measured on the gateway
serving 256 clients, a crowd of 2,000 connections waited in the kernel's queue for 3.5 s,
accepted about 40 a second (asyncio's loop took them all at once), and every one of those
clients' first exchanges ran past a second before the front saw a byte of it. This site
accepts up to its backlog on each readiness of the socket, as asyncio's loop does, and
hands each connection to the loop with ``connect_accepted_socket``; which loop runs does
not matter.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any

from aiohttp import web

log = logging.getLogger("vmcp.transports.http")

#: errors of accept() that say the process has no room for another connection now
_NO_ROOM = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: seconds the listener rests after such an error before it accepts again
ACCEPT_RETRY_DELAY = 1.0


class Listener:
    """Listening sockets whose connections go to ``factory``'s protocols; what
    :class:`aiohttp.web.AppRunner` reads of a site's server (``sockets``, ``close``)."""

    def __init__(self, sockets: list[socket.socket], factory: Any, backlog: int) -> None:
        self.sockets = sockets
        self._factory = factory
        self._backlog = backlog
        self._loop = asyncio.get_running_loop()
        self._handing: set[asyncio.Task[Any]] = set()
        self._closed = False
        for sock in sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(self._backlog):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _NO_ROOM:
                    log.warning("not accepting connections for %gs: %s", ACCEPT_RETRY_DELAY,
                                exc)
                    self._loop.remove_reader(sock.fileno())
                    self._loop.call_later(ACCEPT_RETRY_DELAY, self._resume, sock)
                    return
                continue  # the connection went away before it was accepted
            conn.setblocking(False)
            task = self._loop.create_task(self._hand_over(conn))
            self._handing.add(task)
            task.add_done_callback(self._handing.discard)

    def _resume(self, sock: socket.socket) -> None:
        if not self._closed:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    async def _hand_over(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except OSError as exc:
            log.debug("accepted connection lost before it was served: %s", exc)
            conn.close()

    def close(self) -> None:
        """Stop accepting and close the sockets (connections accepted already live on)."""
        if self._closed:
            return
        self._closed = True
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()


def _bind(host: str | None, port: int, backlog: int, reuse_port: bool) -> list[socket.socket]:
    """Listening sockets on every address ``host`` names (all interfaces when None), as
    ``loop.create_server`` binds them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:  # the IPv4 address is bound by its own socket
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class ListenerSite(web.BaseSite):
    """A TCP site of an :class:`aiohttp.web.AppRunner` on a :class:`Listener`."""

    __slots__ = ("_host", "_port", "_reuse_port")

    def __init__(self, runner: web.BaseRunner, host: str | None, port: int, *,
                 backlog: int, reuse_port: bool = False) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._reuse_port = reuse_port

    @property
    def name(self) -> str:
        """The site's URL (its port once bound)."""
        port = self._server.sockets[0].getsockname()[1] if self._server else self._port
        return f"http://{self._host or '0.0.0.0'}:{port}"

    async def start(self) -> None:
        """Bind, listen and accept."""
        await super().start()
        sockets = _bind(self._host, self._port, self._backlog, self._reuse_port)
        listener = Listener(sockets, self._runner.server, self._backlog)
        self._server = listener  # type: ignore[assignment]
