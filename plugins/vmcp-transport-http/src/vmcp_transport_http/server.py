"""What both HTTP fronts share: their routes' front (:mod:`.front_app`), authentication,
listening, shutdown."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

import anyio
from aiohttp import web

from vmcp.auth.base import AuthError, Principal
from vmcp.auth.metadata import metadata_paths, protected_resource_metadata
from vmcp.transports.base import FrontHost
from vmcp.transports.netsec import front_url, refuse_insecure_bind
from vmcp.transports.probes import PROBE_HEADERS, PROBE_PATHS, probe_answer
from vmcp_transport_http.front_app import FrontApp
from vmcp_transport_http.listener import ListenerSite
from vmcp_transport_http.messages import HttpProblem
from vmcp_transport_http.settings import FrontSettings

log = logging.getLogger("vmcp.transports.http")

#: seconds open connections get to finish once the front is stopping
SHUTDOWN_GRACE = 3.0

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}
#: connections waiting to be accepted: a burst of clients queues in the kernel instead of
#: waiting out SYN retries (aiohttp's default is 128); the front takes them all at once
#: (see :mod:`vmcp_transport_http.listener`) and refuses fast what it cannot serve
LISTEN_BACKLOG = 2048


def build_app(settings: FrontSettings, host: FrontHost) -> FrontApp:
    """A front with no routes yet: ``Host``/``Origin`` checks, CORS, the wait for the start,
    problem reporting (see :mod:`vmcp_transport_http.front_app`)."""
    return FrontApp(settings, host)


async def authenticate(host: FrontHost, request: web.BaseRequest) -> Principal:
    """The caller of one HTTP request, or :class:`HttpProblem` with the auth driver's status
    and its ``WWW-Authenticate`` challenge (which names the protected-resource metadata)."""
    try:
        return await host.authenticate(request.headers)
    except AuthError as exc:
        challenge = getattr(exc, "www_authenticate", None) or "Bearer"
        raise HttpProblem(exc.status, str(exc) or "Unauthorized",
                          headers={"WWW-Authenticate": challenge}) from exc


def add_metadata_routes(app: FrontApp, host: FrontHost, mcp_path: str) -> None:
    """Serve the RFC 9728 protected-resource metadata MCP clients look for after a 401.

    Answered without authentication at ``/.well-known/oauth-protected-resource[/<path>]``;
    404 when no auth driver is configured (there is nothing to discover).
    """

    async def metadata(request: web.BaseRequest) -> web.Response:
        resource = f"{request.scheme}://{request.host}{mcp_path}"
        document = protected_resource_metadata(host.config.auth, resource)
        if document is None:
            raise web.HTTPNotFound()
        return web.json_response(document)

    for path in metadata_paths(mcp_path):
        app.add_route("GET", path, metadata)


def add_health_routes(app: FrontApp, host: FrontHost) -> None:
    """Answer ``/livez`` and ``/readyz`` (see :mod:`vmcp.transports.probes`), without auth."""

    async def probe(request: web.BaseRequest) -> web.Response:
        status, text = probe_answer(host, request.path)
        return web.Response(status=status, text=text, headers=PROBE_HEADERS)

    for path in PROBE_PATHS:
        app.add_route("GET", path, probe)


async def run_app(
    name: str,
    host: FrontHost,
    app: FrontApp,
    settings: FrontSettings,
    path: str,
    ready: Callable[[str], Awaitable[None] | None],
    on_stop: Callable[[], Awaitable[None]],
) -> None:
    """Listen, report the URL of ``path`` (with the real port) to ``ready``, serve until cancelled.

    Before listening, a non-loopback bind without an auth driver is refused (``ConfigError``).
    On the way out ``on_stop`` ends every client session, then the listener closes.
    """
    refuse_insecure_bind(name, settings.host, host.auth_required)
    runner = web.ServerRunner(
        app.server(settings.send_timeout, handler_cancellation=True, access_log=None,
                   keepalive_timeout=settings.idle_connection_timeout),
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_GRACE,
    )
    await runner.setup()
    try:
        site = ListenerSite(runner, settings.host, settings.port, backlog=LISTEN_BACKLOG,
                            reuse_port=bool(settings.reuse_port))
        try:
            await site.start()
        except OSError as exc:
            where = f"{settings.host}:{settings.port}"
            raise OSError(exc.errno, f"cannot listen on {where}: {exc.strerror}") from exc
        port = runner.addresses[0][1]
        url = front_url("http", settings.host, port, path)
        log.info("listening on %s", url)
        result = ready(url)
        if inspect.isawaitable(result):
            await result
        await asyncio.Event().wait()
    finally:
        with anyio.move_on_after(SHUTDOWN_GRACE * 2, shield=True):
            await _stop_taking_requests(runner)
            await on_stop()
            await runner.cleanup()


async def _stop_taking_requests(runner: web.BaseRunner) -> None:
    """Close the listener and every idle connection (busy ones close after the request
    they carry), so that no request arrives once the sessions end: a load balancer then
    sees a refused connection, which it may send elsewhere, instead of a request that was
    taken and never answered."""
    for site in list(runner.sites):
        await site.stop()
    if runner.server is not None:
        runner.server.pre_shutdown()
