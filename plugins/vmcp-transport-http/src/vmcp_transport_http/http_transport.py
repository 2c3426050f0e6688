"""What the ``http`` and ``sse`` drivers share: a pooled client for the back side, and
serving an aiohttp front until cancelled."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from vmcp.transports.base import FrontHost
from vmcp.transports.netsec import NetworkTransport
from vmcp_transport_http.client_pool import ClientPool
from vmcp_transport_http.front_app import FrontApp
from vmcp_transport_http.oauth.callbacks import front_callbacks
from vmcp_transport_http.server import run_app


class FrontServer(Protocol):
    """An HTTP front: its routes, and how to end its client sessions."""

    def app(self) -> FrontApp:
        """The front serving the routes."""

    async def stop(self) -> None:
        """End every client session."""


class HttpTransport(NetworkTransport):
    """Base of the HTTP drivers; a subclass names its settings model and front server."""

    #: builds the front server from the gateway and the validated settings
    server_class: Callable[[FrontHost, Any], FrontServer]

    def __init__(self) -> None:
        self._pool = ClientPool()

    @abstractmethod
    def endpoint(self, settings: Any) -> str:
        """The path clients connect to first (reported to ``ready``)."""

    async def serve(
        self,
        host: FrontHost,
        settings: Mapping[str, Any],
        ready: Callable[[str], Awaitable[None] | None],
    ) -> None:
        """Serve front clients until cancelled (refusing an unauthenticated public bind);
        the front also takes the authorization responses of sign-ins the gateway asks its
        clients to open."""
        config = self.front_settings(settings)
        server = self.server_class(host, config)
        app = server.app()
        front_callbacks.install(app)

        served: list[str] = []

        def serving(url: str) -> Awaitable[None] | None:
            # with a shared port another worker could receive the browser's redirect
            if not config.reuse_port:
                served.append(url)
                front_callbacks.serving(url)
            return ready(url)

        try:
            await run_app(self.name, host, app, config, self.endpoint(config), serving,
                          server.stop)
        finally:
            for url in served:
                front_callbacks.stopped(url)
