"""The front-side checks as aiohttp pieces: ``Host``/``Origin`` (403) and body size (413).

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


def host_origin_middleware(settings: NetworkFrontSettings) -> Middleware:
    """An aiohttp middleware answering 403 to a request whose ``Host`` or ``Origin`` is refused
    (DNS-rebinding and cross-site protection)."""
    policy = HostOriginPolicy.from_settings(settings)

    @web.middleware
    async def check_host_and_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = policy.refusal(request.headers.get("Host"), request.headers.get("Origin"))
        if refusal is not None:
            raise HttpProblem(403, refusal)
        return await handler(request)

    return check_host_and_origin


async def read_body(request: web.Request, limit: int) -> bytes:
    """Read a request body of at most ``limit`` bytes.

    :raises HttpProblem: 413 when the declared or the actual size is larger.
    """
    too_large = HttpProblem(413, f"Request body too large (limit {limit} bytes)")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)
