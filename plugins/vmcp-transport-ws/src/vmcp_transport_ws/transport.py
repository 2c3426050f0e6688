"""The ``ws`` transport driver: MCP over WebSocket, front (serve) and back (connect).

WebSocket is not a standard MCP transport (SEP-1288 is still a proposal), so this follows the
specification's rules for custom transports: the same JSON-RPC messages, one message per text
frame, and the session semantics of the handshake era per connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from vmcp.config import MountConfig
from vmcp.transports.base import Connection, FrontHost
from vmcp.transports.netsec import NetworkTransport
from vmcp_transport_ws.back import open_connection
from vmcp_transport_ws.front import WebSocketFront
from vmcp_transport_ws.settings import WsFrontSettings


class WebSocketTransport(NetworkTransport):
    """Serves MCP clients on ``ws://host:port/path`` and mounts ``ws://``/``wss://`` servers."""

    settings_model = WsFrontSettings
    name = "ws"

    async def serve(
        self,
        host: FrontHost,
        settings: Mapping[str, Any],
        ready: Callable[[str], Awaitable[None] | None],
    ) -> None:
        """Serve front clients per ``[transports.ws]`` until cancelled.

        :raises ConfigError: the settings are invalid, or they bind a non-loopback address
            while no auth driver checks callers.
        """
        front = WebSocketFront(host, self.front_settings(settings))
        await front.run(ready)

    async def connect(
        self, mount: MountConfig, env: dict[str, str], headers: dict[str, str],
        scope: tuple[str, str] | None = None,
    ) -> Connection:
        """Open a WebSocket to one replica of a ``ws`` mount (see :mod:`vmcp_transport_ws.back`);
        an OAuth mount's upgrade carries the grant of the caller or persona ``scope`` names."""
        return await open_connection(mount, env, headers, scope)
