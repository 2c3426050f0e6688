"""The front-side checks as aiohttp pieces: ``Host``/``Origin`` (403), refusals answered as
JSON-RPC errors, CORS for the origins the front accepts, and body size (413).

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


def install_front_checks(app: web.Application, settings: NetworkFrontSettings) -> None:
    """Install the front's checks on ``app``: its one middleware, and CORS headers added to
    every response (streams included, before their headers go out)."""
    policy = HostOriginPolicy.from_settings(settings)
    app.middlewares.append(front_middleware(policy))

    async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin is None or not policy.origin_allowed(origin, request.headers.get("Host")):
            return  # not from a browser; or refused (403), and its answer stays unreadable
        headers = response.headers
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
        headers.add("Vary", "Origin")

    app.on_response_prepare.append(cors_headers)


def front_middleware(policy: HostOriginPolicy) -> Middleware:
    """The one aiohttp middleware of a front (one layer, as it runs on every request): 403
    to a request whose ``Host`` or ``Origin`` is refused (DNS-rebinding and cross-site
    protection), the CORS preflight of an accepted origin, and any :class:`HttpProblem` a
    handler raises answered as its response."""

    @web.middleware
    async def front_checks(request: web.Request, handler: Handler) -> web.StreamResponse:
        headers = request.headers
        try:
            refusal = policy.refusal(headers.get("Host"), headers.get("Origin"))
            if refusal is not None:
                raise HttpProblem(403, refusal)
            if request.method == "OPTIONS" and "Access-Control-Request-Method" in headers:
                return _preflight(headers.get("Access-Control-Request-Headers", ""))
            return await handler(request)
        except HttpProblem as problem:
            return problem.response()

    return front_checks


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
