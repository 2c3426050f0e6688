"""The back side in the 2026-07-28 shape: vmcp against a modern-only Streamable HTTP server.

The backend is ``tests/fixtures/servers/modern.py http`` (the SDK's stateless modern entry;
a request without a modern ``MCP-Protocol-Version`` gets HTTP 400 with -32022). The SDK
server checks ``Mcp-Method``, ``Mcp-Name`` and ``Mcp-Param-*`` against the body and refuses a
mismatch with -32020, so a call that succeeds proves the headers were right.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from aiohttp import web
from http_harness import EVENT_TIMEOUT, START_TIMEOUT, write_config
from mcp import ClientSession, StdioServerParameters, stdio_client
from vmcp_transport_http.streamable import StreamableHttpTransport

from vmcp.config import MountConfig
from vmcp.testing import serving_script
from vmcp.upstream.modern import ModernUpstreamSession
from vmcp.upstream.session import NO_RELATION, UpstreamSession

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

MODERN = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "servers" / "modern.py"


@asynccontextmanager
async def modern_backend() -> AsyncIterator[str]:
    """Run the modern-only fixture over HTTP; yield its endpoint URL."""
    async with serving_script([sys.executable, str(MODERN), "http"], START_TIMEOUT) as url:
        yield f"{url}/mcp"


@asynccontextmanager
async def gateway_client(tmp_path: Path, url: str, era: str,
                         **session_args: Any) -> AsyncIterator[ClientSession]:
    """``vmcp start`` (stdio front) mounting ``url`` as ``m``; a handshake-era client of it."""
    config = write_config(tmp_path / "vmcp.toml", {
        "servers.m": {"transport": "http", "url": url, "era": era}})
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "vmcp", "--config", str(config), "start"],
        env={"VMCP_HOME": str(tmp_path / "home")})
    async with (stdio_client(params) as (read, write),
                ClientSession(read, write, **session_args) as session):
        with anyio.fail_after(START_TIMEOUT):
            await session.initialize()
        yield session


def texts(result: types.CallToolResult | types.GetPromptResult) -> list[str]:
    if isinstance(result, types.GetPromptResult):
        return [m.content.text for m in result.messages]  # type: ignore[union-attr]
    return [block.text for block in result.content]  # type: ignore[union-attr]


@pytest.mark.parametrize("era", ["modern", "auto"])
async def test_a_legacy_client_uses_a_modern_only_http_backend(tmp_path: Path, era: str) -> None:
    async with modern_backend() as url, gateway_client(tmp_path, url, era) as session:
        tools = await session.list_tools()
        assert [t.name for t in tools.tools][:3] == ["m__echo", "m__region", "m__envelope"]
        assert texts(await session.call_tool("m__echo", {"text": "hi"})) == ["modern: hi"]
        # a value that is not plain ASCII travels in the header's Base64 form
        assert texts(await session.call_tool("m__region", {"region": "eu wést "})) == [
            "region eu wést "]
        read = await session.read_resource("modern://doc")
        assert read.contents[0].text == "modern://doc read 1"  # type: ignore[union-attr]
        prompt = await session.get_prompt("m__greet", {"name": "Ada"})
        assert texts(prompt) == ["Hello, Ada!"]
        envelope = (await session.call_tool("m__envelope", {})).structured_content
        assert envelope is not None and envelope["protocolVersion"] == "2026-07-28"


async def test_list_changed_over_an_http_listen_reaches_a_legacy_client(tmp_path: Path) -> None:
    changed = anyio.Event()
    updated: list[str] = []
    got_update = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()
        elif isinstance(message, types.ResourceUpdatedNotification):
            updated.append(str(message.params.uri))
            got_update.set()

    async with (modern_backend() as url,
                gateway_client(tmp_path, url, "modern", message_handler=on_message) as session):
        await session.call_tool("m__add_tool", {"name": "later"})
        with anyio.fail_after(EVENT_TIMEOUT):
            await changed.wait()
        # the gateway re-read the list before it announced the change
        assert "m__later" in {t.name for t in (await session.list_tools()).tools}
        await session.subscribe_resource("modern://doc")
        await session.call_tool("m__touch", {"uri": "modern://doc"})
        with anyio.fail_after(EVENT_TIMEOUT):
            await got_update.wait()
    assert updated == ["modern://doc"]


class Recorder:
    """The ``UpstreamEvents`` of a session under test: what it relays, and how."""

    def __init__(self) -> None:
        self.notifications: list[tuple[dict[str, Any], Any]] = []
        self.arrived = anyio.Event()

    def upstream_notification(self, upstream: UpstreamSession, message: Any, origin: Any) -> None:
        self.notifications.append((message, origin))
        self.arrived.set()

    def upstream_request(self, upstream: UpstreamSession, message: Any, origin: Any) -> None:
        raise AssertionError(f"a modern backend sent a request: {message}")

    def upstream_closed(self, upstream: UpstreamSession, reason: str) -> None:
        """Nothing to do."""


async def _session(url: str, era: str, events: Recorder) -> ModernUpstreamSession:
    transport = StreamableHttpTransport()
    connection = await transport.connect(
        MountConfig(id="m", transport="http", url=url), {}, {})
    session = ModernUpstreamSession("m", "m-0", connection, events, probe=era == "auto")
    await session.start(START_TIMEOUT)
    return session


async def test_the_modern_shape_on_the_wire(tmp_path: Path) -> None:
    """No session id is kept, the listen is held, and its notifications arrive as
    server-wide ones (no relation), without the backend's subscription id."""
    events = Recorder()
    async with modern_backend() as url:
        session = await _session(url, "auto", events)
        try:
            assert session.modern and session.server_info["name"] == "modern"
            assert session.connection.session_id is None  # type: ignore[attr-defined]
            await session.request("tools/call", {"name": "add_tool", "arguments": {"name": "x"}},
                                  EVENT_TIMEOUT)
            with anyio.fail_after(EVENT_TIMEOUT):
                await events.arrived.wait()
            ((message, origin),) = events.notifications
            assert message["method"] == "notifications/tools/list_changed"
            assert origin is NO_RELATION
            assert "_meta" not in message["params"]
            assert session.listen_id is not None and not session.pending  # not a call in flight
        finally:
            await session.aclose()


async def test_cancelling_a_modern_http_request_closes_its_stream() -> None:
    events = Recorder()
    async with modern_backend() as url:
        session = await _session(url, "modern", events)
        try:
            answers: list[dict[str, Any]] = []
            request_id = session.forward(
                "tools/call", {"name": "block", "arguments": {}, "_meta": {"progressToken": 7}},
                answers.append, None)
            with anyio.fail_after(EVENT_TIMEOUT):  # the backend runs the call: it said so
                await events.arrived.wait()
            ((progress, _),) = events.notifications
            assert progress["method"] == "notifications/progress"
            assert session.cancel(request_id, "no longer wanted")
            result = await session.request("tools/call", {
                "name": "was_cancelled", "arguments": {"timeout": EVENT_TIMEOUT}}, EVENT_TIMEOUT)
            assert result["content"][0]["text"] == "cancelled"
            assert answers == []
        finally:
            await session.aclose()


@asynccontextmanager
async def handshake_only_backend() -> AsyncIterator[str]:
    """A Streamable HTTP server of the handshake era only, as servers built before 2026-07-28
    behave: a POST without a session id that is not ``initialize`` gets a plain-text 400."""
    async def post(request: web.Request) -> web.Response:
        message = await request.json()
        if message.get("method") == "initialize":
            return web.json_response({"jsonrpc": "2.0", "id": message["id"], "result": {
                "protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                "serverInfo": {"name": "old", "version": "1"}}},
                headers={"Mcp-Session-Id": "s1"})
        if request.headers.get("Mcp-Session-Id") != "s1":
            return web.Response(status=400, text="Bad Request: No valid session ID provided")
        if "id" not in message:
            return web.Response(status=202)
        return web.json_response({"jsonrpc": "2.0", "id": message["id"], "result": {
            "tools": [{"name": "old_tool", "inputSchema": {"type": "object"}}]}})

    async def get(request: web.Request) -> web.Response:
        return web.Response(status=405)

    app = web.Application()
    app.router.add_post("/mcp", post)
    app.router.add_get("/mcp", get)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        await web.SockSite(runner, sock).start()
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    finally:
        await runner.cleanup()
        sock.close()


async def test_auto_over_http_falls_back_to_the_handshake() -> None:
    """A 4xx without a modern JSON-RPC error body is no modern evidence: ``initialize``
    follows on the same connection, in the handshake-era shape (with its session id)."""
    events = Recorder()
    async with handshake_only_backend() as url:
        session = await _session(url, "auto", events)
        try:
            assert not session.modern and session.protocol_version == "2025-11-25"
            assert session.connection.session_id == "s1"  # type: ignore[attr-defined]
            listed = await session.request("tools/list", None, EVENT_TIMEOUT)
            assert [tool["name"] for tool in listed["tools"]] == ["old_tool"]
        finally:
            await session.aclose()
