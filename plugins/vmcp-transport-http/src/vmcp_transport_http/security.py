"""The front-side checks as aiohttp pieces: ``Host``/``Origin`` (403), refusals answered as
JSON-RPC errors, and body size (413).

The rules themselves (what a ``Host`` or ``Origin`` may be, which binds need auth) are the
kernel's, in :mod:`vmcp.transports.netsec`, shared with the other network transports.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from vmcp.transports.netsec import HostOriginPolicy, NetworkFrontSettings
from vmcp_transport_http.messages import HttpProblem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def front_middleware(settings: NetworkFrontSettings) -> Middleware:
    """The one aiohttp middleware of a front (one layer, as it runs on every request): 403
    to a request whose ``Host`` or ``Origin`` is refused (DNS-rebinding and cross-site
    protection), and any :class:`HttpProblem` a handler raises answered as its response."""
    policy = HostOriginPolicy.from_settings(settings)

    @web.middleware
    async def front_checks(request: web.Request, handler: Handler) -> web.StreamResponse:
        headers = request.headers
        try:
            refusal = policy.refusal(headers.get("Host"), headers.get("Origin"))
            if refusal is not None:
                raise HttpProblem(403, refusal)
            return await handler(request)
        except HttpProblem as problem:
            return problem.response()

    return front_checks


async def read_body(request: web.Request, limit: int) -> bytes:
    """Read a request body of at most ``limit`` bytes.

    :raises HttpProblem: 413 when the declared or the actual size is larger.
    """
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    content = request.content
    if content.is_eof():  # all of it has arrived already (a small body usually has)
        body = content.read_nowait()
    else:
        chunks = bytearray()
        async for chunk in content.iter_any():
            chunks += chunk
            if len(chunks) > limit:
                raise _too_large(limit)
        body = bytes(chunks)
    if len(body) > limit:
        raise _too_large(limit)
    return body


def _too_large(limit: int) -> HttpProblem:
    return HttpProblem(413, f"Request body too large (limit {limit} bytes)")
