"""The path every request to an HTTP front takes: one coroutine from the connection to the
route's handler, on aiohttp's low-level server.

A front serves a handful of fixed paths. aiohttp's ``Application`` would resolve a route,
build a match object, wrap the handler in its middleware and send a signal for every
response: measured in instructions, about a tenth of what the gateway spends on a call over
HTTP. :class:`FrontApp` keeps its routes in a table and takes each request through:

1. ``Host``/``Origin``: 403 for a refused one (DNS-rebinding and cross-site protection);
2. the CORS preflight of an accepted origin (``OPTIONS`` with
   ``Access-Control-Request-Method``), whatever the path;
3. a wait until the gateway has started, for every request but a health probe (the front
   listens while the mounts start, so that ``/readyz`` can say so);
4. the route: 404 for an unknown path, 405 (with ``Allow``) for a method it does not serve;
5. its handler; an :class:`~vmcp_transport_http.messages.HttpProblem` raised on the way is
   answered as its response (with the id of the request a refused POST carries).

Every response, a stream's included, gets the front's headers before its own leave (see
:meth:`FrontApp.finish_headers`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from vmcp.transports.base import FrontHost
from vmcp.transports.netsec import HostOriginPolicy, NetworkFrontSettings
from vmcp.transports.probes import PROBE_PATHS
from vmcp_transport_http.front_server import FrontServer
from vmcp_transport_http.messages import HttpProblem
from vmcp_transport_http.security import (
    CORS_EXPOSED_HEADERS,
    awaits_continue,
    peek_id,
    preflight,
)

log = logging.getLogger("vmcp.transports.http")

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class FrontRequest(web.BaseRequest):
    """A request to a :class:`FrontApp`; its responses get the front's headers. Each front
    serves a subclass naming it (so that aiohttp's ``clone`` makes one of the same front)."""

    _front: FrontApp

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        # aiohttp calls this on every response just before its headers are written (its
        # Application's requests send their response signal from here)
        self._front.finish_headers(self, response)


class FrontApp:
    """The routes of one HTTP front and the path each request takes to them (see the
    module's documentation)."""

    def __init__(self, settings: NetworkFrontSettings, host: FrontHost) -> None:
        self._policy = HostOriginPolicy.from_settings(settings)
        self._host = host
        self._routes: dict[str, dict[str, Handler]] = {}
        self._started = False

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Serve ``method`` requests to ``path`` with ``handler``."""
        methods = self._routes.setdefault(path, {})
        if method in methods:
            raise ValueError(f"{method} {path} is served already")
        methods[method] = handler

    def server(self, send_timeout: float, **kwargs: Any) -> web.Server:
        """aiohttp's low-level server taking every request through this front, dropping a
        client that reads nothing for ``send_timeout`` seconds (``kwargs``: the connection
        settings of :class:`aiohttp.web.Server`)."""
        loop = asyncio.get_running_loop()
        request_class = type("FrontRequest", (FrontRequest,), {"_front": self})

        def request(message: Any, payload: Any, protocol: Any, writer: Any,
                    task: asyncio.Task[None]) -> FrontRequest:
            return request_class(message, payload, protocol, writer, task, loop)

        posts = [path for path, methods in self._routes.items() if "POST" in methods]
        return FrontServer(self.handle, request_factory=request, send_timeout=send_timeout,
                           post_paths=posts, **kwargs)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Take one request through the front's checks to its route's handler."""
        headers = request.headers
        try:
            refusal = self._policy.refusal(headers.get("Host"), headers.get("Origin"))
            if refusal is not None:
                raise HttpProblem(403, refusal)
            method = request.method
            if method == "OPTIONS" and "Access-Control-Request-Method" in headers:
                return preflight(headers.get("Access-Control-Request-Headers", ""))
            path = request.path
            if not self._started and path not in PROBE_PATHS:
                log.debug("%s %s waits until the gateway has started", method, path)
                await self._host.started()
                self._started = True
            methods = self._routes.get(path)
            if methods is None:
                raise web.HTTPNotFound()
            handler = methods.get(method)
            if handler is None:
                raise web.HTTPMethodNotAllowed(method, list(methods))
            return await handler(request)
        except HttpProblem as problem:
            if awaits_continue(request):
                # the body was never asked for (nor will it come to be peeked at): what the
                # client sends next on this connection would be taken for it
                problem.close = True
            if problem.request_id is None and request.method == "POST" and not problem.close:
                problem.request_id = await peek_id(request)
            return problem.response()

    def finish_headers(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        """What every response of the front carries: ``Connection: close`` once the gateway
        is stopping, and the CORS headers of an accepted browser origin."""
        if self._host.draining:
            # Every connection ends after its response, so that a load balancer opens a new
            # one for its next request (to an instance that still takes work) instead of
            # sending it where it could not tell whether the request ran. The header too:
            # aiohttp chose its Connection header already.
            response.force_close()
            response.headers["Connection"] = "close"
        origin = request.headers.get("Origin")
        if origin is None or not self._policy.origin_allowed(origin, request.headers.get("Host")):
            return  # not from a browser; or refused (403), and its answer stays unreadable
        response_headers = response.headers
        response_headers["Access-Control-Allow-Origin"] = origin
        response_headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
        response_headers.add("Vary", "Origin")
