"""An MCP client inside the gateway process: its requests take the same path as any client's.

Used by the control endpoint's ``tools`` and ``call`` operations and by ``vmcp tools`` /
``vmcp call`` when no gateway runs (they then start one from the configuration, in-process).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from vmcp import __version__
from vmcp.config import VmcpConfig
from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import METHOD_NOT_FOUND, RpcError
from vmcp.protocol.versions import LATEST_HANDSHAKE_VERSION
from vmcp.transports.base import JsonMessage

if TYPE_CHECKING:
    from vmcp.auth.base import Principal
    from vmcp.gateway.gateway import Gateway

T = TypeVar("T")


class LocalSession:
    """One in-process client session (it is its own front peer)."""

    def __init__(self, gateway: Gateway, timeout: float) -> None:
        self.timeout = timeout
        self.gateway = gateway
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[JsonMessage]] = {}
        self._session = gateway.open_session(self)

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Take what the gateway sends this client: answers resolve their requests."""
        if "method" not in message:
            future = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(message)
        elif "id" in message:  # the gateway asks something of the client: it offers nothing
            self._session.handle(jsonrpc.error(message["id"], RpcError(
                METHOD_NOT_FOUND, "this client offers no capabilities")))

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and return its result.

        :raises RpcError: the gateway (or a backend) answered with an error.
        :raises TimeoutError: no answer within the timeout.
        """
        request_id = next(self._ids)
        future: asyncio.Future[JsonMessage] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._session.handle(jsonrpc.request(request_id, method, params or {}))
        try:
            message = await asyncio.wait_for(future, self.timeout)
        finally:
            self._pending.pop(request_id, None)
        if "error" in message:
            raise RpcError.from_error(message["error"])
        result = message.get("result")
        return result if isinstance(result, dict) else {}

    async def open(self) -> None:
        """Perform the handshake."""
        await self.request("initialize", {
            "protocolVersion": LATEST_HANDSHAKE_VERSION, "capabilities": {},
            "clientInfo": {"name": "vmcp-cli", "version": __version__}})
        self._session.handle(jsonrpc.notification("notifications/initialized"))

    async def aclose(self) -> None:
        """Close the session (in-flight requests are cancelled)."""
        await self._session.aclose()

    async def list_tools(self) -> list[dict[str, Any]]:
        """Every tool the gateway exposes, over all pages."""
        tools: list[dict[str, Any]] = []
        cursor = None
        while True:
            result = await self.request("tools/list", {"cursor": cursor} if cursor else {})
            tools.extend(result.get("tools") or [])
            cursor = result.get("nextCursor")
            if not cursor:
                return tools

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call one tool; the result as the gateway sent it."""
        return await self.request("tools/call", {"name": name, "arguments": arguments})


def config_for_tool(config: VmcpConfig, tool: str) -> VmcpConfig:
    """``config`` with only the mount that exposes ``tool`` (by its prefix), so calling one
    tool starts one backend; unchanged when the name shows no mount's prefix (a mount with
    an empty prefix, a gateway meta-tool)."""
    separator = config.gateway.separator
    owners = [m for m in config.servers.values()
              if m.enabled and m.exposed_prefix and tool.startswith(m.exposed_prefix + separator)]
    if not owners:
        return config
    owner = max(owners, key=lambda m: len(m.exposed_prefix))
    return config.model_copy(update={"servers": {owner.id: owner}})


async def with_local_gateway(
    config: VmcpConfig, work: Callable[[LocalSession], Awaitable[T]],
    principal: Principal | None = None,
) -> T:
    """Start a gateway from ``config`` in this process, run ``work`` with a session on it,
    then stop it (``vmcp tools`` and ``vmcp call`` when no gateway is running).

    :param principal: who the session is (``vmcp tools --persona``); default: full access.
    """
    from vmcp.gateway.gateway import Gateway

    # no front client to relay to
    gateway = Gateway(config, default_principal=principal, client_capabilities={})
    try:
        await gateway.start()
        session = LocalSession(gateway, config.gateway.request_timeout)
        await session.open()
        try:
            return await work(session)
        finally:
            await session.aclose()
    finally:
        await gateway.stop()
