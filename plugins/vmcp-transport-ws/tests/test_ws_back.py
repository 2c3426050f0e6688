"""The WebSocket back side: vmcp mounting a WebSocket MCP server, over real sockets.

The backend is :class:`ws_harness.WebSocketBackend` (the SDK fixture server in-process, one
copy per connection) in the test's own event loop; the gateway is a real ``vmcp start``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from vmcp_transport_ws.back import CONNECT_ATTEMPTS
from vmcp_transport_ws.transport import WebSocketTransport
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response
from ws_harness import (
    EVENT_TIMEOUT,
    WebSocketBackend,
    run_gateway,
    write_config,
    ws_session,
)

from vmcp.config import MountConfig
from vmcp.protocol.errors import BACKEND_UNAVAILABLE
from vmcp.transports.base import ConnectionClosed

pytestmark = pytest.mark.anyio


def _config(tmp_path: Path, backend: WebSocketBackend) -> Path:
    return write_config(tmp_path / "vmcp.toml", {
        "transports.ws": {"port": 0},
        "servers.remote": {
            "transport": "ws",
            "url": backend.url,
            "headers": {"Authorization": "Bearer ${WS_TEST_TOKEN}"},
        },
    })


def texts(result: types.CallToolResult) -> list[str]:
    """The text blocks of a tool result."""
    return [block.text for block in result.content if isinstance(block, types.TextContent)]


async def test_mounts_a_websocket_backend(tmp_path: Path) -> None:
    backend = WebSocketBackend()
    steps: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        steps.append(value)

    async with (
        backend.running(),
        run_gateway(_config(tmp_path, backend), "ws", log=tmp_path / "gateway.log",
                    env={"WS_TEST_TOKEN": "s3cret"}) as gateway,
        ws_session(await gateway.url()) as (session, _),
    ):
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert {"remote__echo", "remote__progress", "remote__block"} <= names
        with anyio.fail_after(EVENT_TIMEOUT):
            assert texts(await session.call_tool("remote__echo", {"text": "over ws"})) == [
                "over ws"]
            result = await session.call_tool("remote__progress", {"steps": 2},
                                             progress_callback=on_progress)
        assert texts(result) == ["done after 2 steps"]
        assert steps == [1, 2]
    [(headers, subprotocol)] = backend.handshakes
    assert subprotocol == "mcp"
    assert headers["Authorization"] == "Bearer s3cret"  # from config, ${VAR} expanded
    assert headers["User-Agent"].startswith("vmcp/")


async def test_dropped_backend_fails_in_flight_call_at_once_then_reconnects(
    tmp_path: Path,
) -> None:
    backend = WebSocketBackend()
    changed: list[types.ToolListChangedNotification] = []
    changed_event = anyio.Event()

    async def on_message(message: Any) -> None:
        nonlocal changed_event
        if isinstance(message, types.ToolListChangedNotification):
            changed.append(message)
            changed_event.set()
            changed_event = anyio.Event()

    started = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        started.set()

    failure: dict[str, Any] = {}
    async with (
        backend.running(),
        run_gateway(_config(tmp_path, backend), "ws", log=tmp_path / "gateway.log",
                    env={"WS_TEST_TOKEN": "t"}) as gateway,
        ws_session(await gateway.url(), message_handler=on_message) as (session, _),
    ):

        async def call_block() -> None:
            with pytest.raises(MCPError) as caught:
                await session.call_tool("remote__block", {}, progress_callback=on_progress)
            failure["error"] = caught.value.error
            failure["at"] = anyio.current_time()

        with anyio.fail_after(EVENT_TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call_block)
                await started.wait()
                dropped_at = anyio.current_time()
                backend.drop()
        # the request timeout is 60 s: only the drop itself can end the call this soon
        assert failure["at"] - dropped_at < 2.0
        assert failure["error"].code == BACKEND_UNAVAILABLE

        # the gateway's supervisor reconnects; within the flap grace the mount's tools stay
        # listed, and clients hear of its lists once it is back
        await backend.wait_connections(2)
        with anyio.fail_after(EVENT_TIMEOUT):
            while len(changed) < 1:
                await changed_event.wait()
            assert texts(await session.call_tool("remote__echo", {"text": "back"})) == [
                "back"]


async def test_connect_reports_refusals_and_retries_only_transient_ones() -> None:
    transport = WebSocketTransport()
    attempts: list[str] = []
    status = {"value": 403}

    def refuse(connection: ServerConnection, request: Request) -> Response:
        attempts.append(request.path)
        return connection.respond(status["value"], "no\n")

    async def never(connection: ServerConnection) -> None:
        raise AssertionError("the handshake was refused")

    async with serve(never, "127.0.0.1", 0, process_request=refuse) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        mount = MountConfig(id="remote", transport="ws", url=f"ws://127.0.0.1:{port}/mcp")
        with anyio.fail_after(EVENT_TIMEOUT):
            with pytest.raises(ConnectionClosed, match="HTTP 403"):
                await transport.connect(mount, {}, {})
            assert len(attempts) == 1  # a refusal is final
            status["value"] = 503
            with pytest.raises(ConnectionClosed, match="HTTP 503"):
                await transport.connect(mount, {}, {})
            assert len(attempts) == 1 + CONNECT_ATTEMPTS  # an unavailable server is retried

    # nothing listens on the port any more
    with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(ConnectionClosed, match="cannot connect"):
        await transport.connect(mount, {}, {})
    wrong = MountConfig(id="remote", transport="ws", url="http://user:pw@127.0.0.1/mcp")
    with pytest.raises(ConnectionClosed, match="needs a ws:// or wss:// url") as caught:
        await transport.connect(wrong, {}, {})
    assert "pw" not in str(caught.value)
