"""The ``http`` transport driver: Streamable HTTP, front and back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from vmcp.config import MountConfig
from vmcp.transports.base import Connection, FrontHost
from vmcp.transports.netsec import NetworkTransport
from vmcp_transport_http.client_pool import ClientPool
from vmcp_transport_http.connection import CONNECT_TIMEOUT
from vmcp_transport_http.server import run_app
from vmcp_transport_http.settings import StreamableSettings
from vmcp_transport_http.streamable_client import StreamableHttpConnection
from vmcp_transport_http.streamable_server import StreamableHttpServer


class StreamableHttpTransport(NetworkTransport):
    """MCP's Streamable HTTP transport (2025-03-26 and later).

    Front: serves ``[transports.http]`` (default ``http://127.0.0.1:3000/mcp``).
    Back: mounts ``transport = "http"`` servers by ``url`` with the mount's ``headers``.
    """

    settings_model = StreamableSettings
    name = "http"

    def __init__(self) -> None:
        self._pool = ClientPool()

    async def serve(
        self,
        host: FrontHost,
        settings: Mapping[str, Any],
        ready: Callable[[str], Awaitable[None] | None],
    ) -> None:
        """Serve front clients until cancelled (refusing an unauthenticated public bind)."""
        config = self.front_settings(settings)
        server = StreamableHttpServer(host, config)
        await run_app(self.name, host, server.app(), config, config.path, ready, server.stop)

    async def connect(
        self, mount: MountConfig, env: dict[str, str], headers: dict[str, str]
    ) -> Connection:
        """A connection to the mount's URL; nothing is sent until the gateway's first message."""
        assert mount.url is not None  # the mount config requires a url for remote transports
        timeout = mount.startup_timeout or CONNECT_TIMEOUT
        return StreamableHttpConnection(self._pool, mount.url, headers, timeout)
