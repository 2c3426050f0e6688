"""aiohttp's low-level server for an HTTP front: each connection starts on the plain-POST
path (:class:`~vmcp_transport_http.post_connection.PostConnection`) and is handed to aiohttp's
own handler (:class:`FrontConnection`) at the first request that path does not serve. Both
drop a client that stops reading (:class:`~vmcp_transport_http.send_deadline.SendDeadline`).
"""

from __future__ import annotations

from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from vmcp_transport_http.post_connection import PostConnection, post_routes
from vmcp_transport_http.send_deadline import SendDeadline

#: aiohttp's own keep-alive timeout, for a server given none
DEFAULT_KEEPALIVE = 3630.0


class FrontConnection(SendDeadline, RequestHandler):
    """aiohttp's handler of one connection, aborted once its client has taken nothing of a
    response for ``send_timeout`` seconds: every connection's requests but the plain POSTs
    of :class:`~vmcp_transport_http.post_connection.PostConnection`, which hands it over."""

    __slots__ = ("_send_timeout", "_stall", "_unsent")

    def __init__(self, manager: web.Server, *, send_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._init_deadline(send_timeout)


class FrontServer(web.Server):
    """aiohttp's low-level server of a front: its connections start as
    :class:`~vmcp_transport_http.post_connection.PostConnection` serving the plain POSTs to
    ``post_paths``, and go on as :class:`FrontConnection` (with no such path, at once).
    ``kwargs``: the settings of :class:`aiohttp.web.Server` and of its connections."""

    def __init__(self, *args: Any, send_timeout: float, post_paths: list[str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._send_timeout = send_timeout
        self._post_routes = post_routes(post_paths or [])
        self._idle_timeout = float(kwargs.get("keepalive_timeout", DEFAULT_KEEPALIVE))

    def __call__(self) -> RequestHandler:
        """The protocol of a new connection."""
        if not self._post_routes:
            return self.fallback()
        # a protocol aiohttp's server keeps as it keeps its own handlers (see PostConnection)
        return cast(RequestHandler, PostConnection(
            self, self._post_routes, self.fallback, loop=self._loop,
            idle_timeout=self._idle_timeout, send_timeout=self._send_timeout))

    def fallback(self) -> FrontConnection:
        """aiohttp's handler of a connection, for every request but the plain POSTs."""
        return FrontConnection(self, loop=self._loop, send_timeout=self._send_timeout,
                               **self._kwargs)
