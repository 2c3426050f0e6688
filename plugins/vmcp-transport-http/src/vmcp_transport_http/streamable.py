"""The ``http`` transport driver: Streamable HTTP, front and back."""

from __future__ import annotations

from typing import Any

from vmcp.config import MountConfig
from vmcp.transports.base import Connection
from vmcp_transport_http.connection import CONNECT_TIMEOUT
from vmcp_transport_http.http_transport import HttpTransport
from vmcp_transport_http.oauth.authorizer import authorizer_for
from vmcp_transport_http.settings import StreamableSettings
from vmcp_transport_http.streamable_client import StreamableHttpConnection
from vmcp_transport_http.streamable_server import StreamableHttpServer


class StreamableHttpTransport(HttpTransport):
    """MCP's Streamable HTTP transport (2025-03-26 and later).

    Front: serves ``[transports.http]`` (default ``http://127.0.0.1:3000/mcp``).
    Back: mounts ``transport = "http"`` servers by ``url`` with the mount's ``headers``.
    """

    settings_model = StreamableSettings
    name = "http"
    server_class = StreamableHttpServer

    def endpoint(self, settings: Any) -> str:
        """The path of the front's first request."""
        return settings.path  # type: ignore[no-any-return]

    async def connect(
        self, mount: MountConfig, env: dict[str, str], headers: dict[str, str],
        scope: tuple[str, str] | None = None,
    ) -> Connection:
        """A connection to the mount's URL; nothing is sent until the gateway's first message.

        An OAuth mount's connection sends the grant of the persona it serves (``scope``) or
        the service grant; without one a person must sign in first, and it fails at once.
        """
        assert mount.url is not None  # the mount config requires a url for remote transports
        timeout = mount.startup_timeout or CONNECT_TIMEOUT
        return StreamableHttpConnection(self._pool, mount.url, headers, timeout,
                                        authorizer_for(mount, scope))
