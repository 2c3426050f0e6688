"""The ``sse`` transport driver: the deprecated HTTP+SSE of MCP 2024-11-05, front and back."""

from __future__ import annotations

from typing import Any

from vmcp.config import MountConfig
from vmcp.transports.base import Connection
from vmcp_transport_http.connection import CONNECT_TIMEOUT
from vmcp_transport_http.http_transport import HttpTransport
from vmcp_transport_http.legacy_client import LegacySseConnection
from vmcp_transport_http.legacy_server import LegacySseServer
from vmcp_transport_http.oauth.authorizer import authorizer_for
from vmcp_transport_http.settings import LegacySseSettings


class LegacySseTransport(HttpTransport):
    """The HTTP+SSE transport, for clients and servers that predate Streamable HTTP.

    Front: serves ``[transports.sse]`` (default ``http://127.0.0.1:3002/sse``).
    Back: mounts ``transport = "sse"`` servers by the ``url`` of their event stream.
    """

    settings_model = LegacySseSettings
    name = "sse"
    server_class = LegacySseServer

    def endpoint(self, settings: Any) -> str:
        """The path of the front's first request."""
        return settings.sse_path  # type: ignore[no-any-return]

    async def connect(
        self, mount: MountConfig, env: dict[str, str], headers: dict[str, str],
        scope: tuple[str, str] | None = None,
    ) -> Connection:
        """Open the mount's event stream and wait for its ``endpoint`` event (an OAuth
        mount's grant is chosen as for ``http``)."""
        assert mount.url is not None  # the mount config requires a url for remote transports
        timeout = mount.startup_timeout or CONNECT_TIMEOUT
        return await LegacySseConnection.open(self._pool, mount.url, headers, timeout,
                                              authorizer_for(mount, scope))
