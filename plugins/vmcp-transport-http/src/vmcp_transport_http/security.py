"""The path every request to an HTTP front takes, as two aiohttp pieces (one layer each,
since they run on every request): the middleware (``Host``/``Origin`` checks with 403, CORS
preflight, waiting for the gateway's start, refusals answered as JSON-RPC errors) and the
response hook (CORS headers, ``Connection: close`` while draining); and body size (413).

The rules themselves (what a ``Host`` or ``Origin`` may be, which binds need auth) are the
kernel's, in :mod:`vmcp.transports.netsec`, shared with the other network transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from vmcp.protocol.jsonrpc import readable_id
from vmcp.transports.base import FrontHost
from vmcp.transports.netsec import HostOriginPolicy, NetworkFrontSettings
from vmcp.transports.probes import PROBE_PATHS
from vmcp_transport_http.messages import HttpProblem

log = logging.getLogger("vmcp.transports.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


#: what a browser client sends besides the CORS-safelisted headers (and the
#: ``Mcp-Param-*`` headers of 2026-07-28 tool calls, allowed as a preflight names them)
CORS_REQUEST_HEADERS = ("Authorization, Content-Type, Last-Event-ID, Mcp-Protocol-Version, "
                        "Mcp-Session-Id, Mcp-Method, Mcp-Name")
_PARAM_PREFIX = "mcp-param-"
#: response headers a browser client's script must be able to read
CORS_EXPOSED_HEADERS = "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate"
CORS_METHODS = "GET, POST, DELETE, OPTIONS"
#: seconds a browser may reuse a preflight answer
CORS_MAX_AGE = "600"
#: bytes of a refused POST's body read to find the id its refusal names (it comes first,
#: in practice), and the seconds that reading may wait for them
ID_PEEK_BYTES = 64 * 1024
ID_PEEK_WAIT = 0.5


def install_front_checks(app: web.Application, settings: NetworkFrontSettings,
                         host: FrontHost) -> None:
    """Install the front's path on ``app``: its one middleware, and its one hook run on
    every response (streams included) before the headers go out."""
    policy = HostOriginPolicy.from_settings(settings)
    app.middlewares.append(front_middleware(policy, host))

    async def finish_headers(request: web.Request, response: web.StreamResponse) -> None:
        if host.draining:
            # Once the gateway is stopping, every connection ends after its response, so
            # that a load balancer opens a new one for its next request (to an instance
            # that still takes work) instead of sending it where it could not tell whether
            # the request ran. The header too: aiohttp chose its Connection header already.
            response.force_close()
            response.headers["Connection"] = "close"
        origin = request.headers.get("Origin")
        if origin is None or not policy.origin_allowed(origin, request.headers.get("Host")):
            return  # not from a browser; or refused (403), and its answer stays unreadable
        headers = response.headers
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
        headers.add("Vary", "Origin")

    app.on_response_prepare.append(finish_headers)


def front_middleware(policy: HostOriginPolicy, host: FrontHost) -> Middleware:
    """The one aiohttp middleware of a front: 403 to a request whose ``Host`` or ``Origin``
    is refused (DNS-rebinding and cross-site protection), the CORS preflight of an accepted
    origin, a wait until the gateway has started for every request but a health probe (the
    front listens while the mounts start, so that ``/readyz`` can say so), and any
    :class:`HttpProblem` a handler raises answered as its response.

    A POST refused before its body was read (403, 401, 415, 503) gets the id of the request
    it carries when the start of its body shows one."""
    started = False

    @web.middleware
    async def front_checks(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal started
        headers = request.headers
        try:
            refusal = policy.refusal(headers.get("Host"), headers.get("Origin"))
            if refusal is not None:
                raise HttpProblem(403, refusal)
            if request.method == "OPTIONS" and "Access-Control-Request-Method" in headers:
                return _preflight(headers.get("Access-Control-Request-Headers", ""))
            if not started and request.path not in PROBE_PATHS:
                log.debug("%s %s waits until the gateway has started", request.method,
                          request.path)
                await host.started()
                started = True
            return await handler(request)
        except HttpProblem as problem:
            if problem.request_id is None and request.method == "POST":
                problem.request_id = await _peek_id(request)
            return problem.response()

    return front_checks


async def _peek_id(request: web.Request) -> str | int | None:
    """The id near the start of a body not read yet (None once the handler has read it)."""
    content = request.content
    if content.is_eof():  # all of it has arrived (or was read already: then nothing is left)
        start = content.read_nowait(ID_PEEK_BYTES)
        return readable_id(start) if start else None
    prefix = bytearray()
    with contextlib.suppress(TimeoutError, asyncio.TimeoutError, OSError):
        async with asyncio.timeout(ID_PEEK_WAIT):
            while len(prefix) < ID_PEEK_BYTES and not content.is_eof():
                prefix += await content.read(ID_PEEK_BYTES - len(prefix))
    return readable_id(bytes(prefix)) if prefix else None


def _preflight(requested: str) -> web.Response:
    params = [name.strip() for name in requested.split(",")
              if name.strip().lower().startswith(_PARAM_PREFIX)]
    return web.Response(status=204, headers={
        "Access-Control-Allow-Methods": CORS_METHODS,
        "Access-Control-Allow-Headers": ", ".join([CORS_REQUEST_HEADERS, *params]),
        "Access-Control-Max-Age": CORS_MAX_AGE,
    })


async def read_body(request: web.Request, limit: int) -> bytes:
    """Read a request body of at most ``limit`` bytes.

    :raises HttpProblem: 413 when the declared or the actual size is larger (with the id
        the start of the body shows).
    """
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)  # the body is not read: the middleware peeks at its start
    content = request.content
    if content.is_eof():  # all of it has arrived already (a small body usually has)
        body = content.read_nowait()
    else:
        chunks = bytearray()
        async for chunk in content.iter_any():
            chunks += chunk
            if len(chunks) > limit:
                raise _too_large(limit, bytes(chunks[:ID_PEEK_BYTES]))
        body = bytes(chunks)
    if len(body) > limit:
        raise _too_large(limit, body[:ID_PEEK_BYTES])
    return body


def _too_large(limit: int, start: bytes = b"") -> HttpProblem:
    return HttpProblem(413, f"Request body too large (limit {limit} bytes)",
                       request_id=readable_id(start) if start else None)
