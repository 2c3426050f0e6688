"""The WebSocket front of a real ``vmcp start -t ws`` process, over real sockets.

The client is the SDK's ``ClientSession`` over ``ws_streams``, or a bare websockets client
(or a raw TCP socket) where a test needs to misbehave.
"""

from __future__ import annotations

import asyncio
import json

import anyio
import mcp_types as types
import pytest
from mcp.client.context import ClientRequestContext
from vmcp_transport_ws.front import ClientPeer
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import CloseCode
from websockets.typing import Origin, Subprotocol
from ws_harness import (
    ALLOWED_ORIGIN,
    EVENT_TIMEOUT,
    MAX_MESSAGE_BYTES,
    MCP,
    GatewayProcess,
    ws_session,
)

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "raw", "version": "0"}},
}


def texts(result: types.CallToolResult) -> list[str]:
    """The text blocks of a tool result."""
    return [block.text for block in result.content if isinstance(block, types.TextContent)]


async def test_sdk_client_session_over_websocket(ws_gateway: GatewayProcess) -> None:
    url = await ws_gateway.url()

    async def sampling(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="42"), model="m")

    steps: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        steps.append(value)

    async with ws_session(url, sampling_callback=sampling) as (session, websocket):
        assert websocket.subprotocol == "mcp"
        tools = await session.list_tools()
        assert {"fx__echo", "fx__progress", "fx__sample"} <= {tool.name for tool in tools.tools}
        with anyio.fail_after(EVENT_TIMEOUT):
            assert texts(await session.call_tool("fx__echo", {"text": "hi"})) == ["hi"]
            # notifications and a server-to-client request come back on the same socket
            result = await session.call_tool("fx__progress", {"steps": 3},
                                             progress_callback=on_progress)
            assert texts(result) == ["done after 3 steps"]
            assert steps == [1, 2, 3]
            assert texts(await session.call_tool("fx__sample", {"prompt": "?"})) == [
                "sampled: 42"]
            pong = await websocket.ping()
            await pong


async def test_each_connection_is_its_own_session(ws_gateway: GatewayProcess) -> None:
    url = await ws_gateway.url()
    async with ws_session(url) as (first, _), ws_session(url) as (second, _):
        with anyio.fail_after(EVENT_TIMEOUT):
            await first.send_ping()
        async with ws_session(url) as (_, third_socket):
            await third_socket.close()
        with anyio.fail_after(EVENT_TIMEOUT):
            assert texts(await second.call_tool("fx__echo", {"text": "still here"})) == [
                "still here"]
            assert texts(await first.call_tool("fx__echo", {"text": "me too"})) == ["me too"]


async def test_origin_is_checked(ws_gateway: GatewayProcess) -> None:
    url = await ws_gateway.url()
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, subprotocols=[MCP], origin=Origin("http://evil.example")):
            pass
    assert refused.value.response.status_code == 403
    assert b"Origin" in refused.value.response.body
    for other_site in ("http://localhost:5173", "http://127.0.0.1"):  # other local ports
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, subprotocols=[MCP], origin=Origin(other_site)):
                pass
        assert refused.value.response.status_code == 403
    own = "http://" + url.removeprefix("ws://").split("/", 1)[0]
    for origin in (own, ALLOWED_ORIGIN):
        async with ws_session(url, origin=Origin(origin)) as (session, _):
            with anyio.fail_after(EVENT_TIMEOUT):
                await session.send_ping()


async def _raw_handshake(url: str, host: str, extra: str = "") -> str:
    """Send a hand-written upgrade request; return the response's status line."""
    address = url.removeprefix("ws://").split("/", 1)[0]
    hostname, port = address.rsplit(":", 1)
    request = (
        "GET /mcp HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"{extra}\r\n"
    )
    with anyio.fail_after(EVENT_TIMEOUT):
        async with await anyio.connect_tcp(hostname, int(port)) as stream:
            await stream.send(request.encode())
            response = b""
            while b"\r\n" not in response:
                response += await stream.receive()
    return response.split(b"\r\n", 1)[0].decode()


async def test_host_header_is_checked(ws_gateway: GatewayProcess) -> None:
    url = await ws_gateway.url()
    assert " 101 " in await _raw_handshake(url, "localhost:1234")
    assert " 403 " in await _raw_handshake(url, "evil.example")  # DNS rebinding
    # a second Origin must not hide a bad first one
    two_origins = "Origin: http://evil.example\r\nOrigin: http://localhost\r\n"
    assert " 400 " in await _raw_handshake(url, "127.0.0.1", two_origins)


async def test_oversized_message_closes_1009(ws_gateway: GatewayProcess) -> None:
    url = await ws_gateway.url()
    async with connect(url, subprotocols=[MCP]) as websocket:
        with anyio.fail_after(EVENT_TIMEOUT):
            await websocket.send(json.dumps(INITIALIZE))
            assert json.loads(await websocket.recv())["id"] == 1
            await websocket.send("x" * (MAX_MESSAGE_BYTES + 1))
            with pytest.raises(ConnectionClosed) as closed:
                await websocket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG


async def test_framing_and_handshake_rules(ws_gateway: GatewayProcess) -> None:
    url = await ws_gateway.url()
    # malformed JSON gets -32700 and the connection goes on; no subprotocol is fine too
    async with connect(url) as websocket:
        assert websocket.subprotocol is None
        with anyio.fail_after(EVENT_TIMEOUT):
            await websocket.send("{not json")
            assert json.loads(await websocket.recv())["error"]["code"] == -32700
            await websocket.send(json.dumps(INITIALIZE))
            reply = json.loads(await websocket.recv())
        assert reply["result"]["serverInfo"]["name"] == "vmcp"
        await websocket.close()
    assert websocket.close_code == CloseCode.NORMAL_CLOSURE
    # another path, or only other subprotocols, are refused
    with pytest.raises(InvalidStatus) as wrong_path:
        async with connect(url.replace("/mcp", "/other")):
            pass
    assert wrong_path.value.response.status_code == 404
    with pytest.raises(InvalidStatus) as wrong_protocol:
        async with connect(url, subprotocols=[Subprotocol("graphql-ws")]):
            pass
    assert wrong_protocol.value.response.status_code == 400


async def test_a_client_that_stops_reading_is_disconnected_1008() -> None:
    """The per-connection queue keeps order, and overflowing it closes with 1008."""
    read_three = anyio.Event()

    async def handler(websocket: ServerConnection) -> None:
        peer = ClientPeer(websocket, max_queued=3)
        writer = asyncio.get_running_loop().create_task(peer.write_loop())
        for n in range(3):
            peer.send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"n": n}})
        await read_three.wait()
        for n in range(4):  # sent at once, faster than any socket: the fourth overflows
            peer.send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"n": n}})
        await writer

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/mcp") as websocket:
            with anyio.fail_after(EVENT_TIMEOUT):
                received = [json.loads(await websocket.recv())["params"]["n"] for _ in range(3)]
                assert received == [0, 1, 2]
                read_three.set()
                with pytest.raises(ConnectionClosed) as closed:
                    await websocket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CloseCode.POLICY_VIOLATION


async def test_bad_messages_get_errors_and_the_session_goes_on(
    ws_gateway: GatewayProcess,
) -> None:
    """A lone surrogate, bytes that are not UTF-8 or a deep message: an error, not 1011."""
    url = await ws_gateway.url()
    deep = "[" * 2000 + "]" * 2000
    async with connect(url, subprotocols=[MCP]) as websocket:
        with anyio.fail_after(EVENT_TIMEOUT):
            await websocket.send(json.dumps({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
            early = json.loads(await websocket.recv())
            assert early["id"] == 9 and early["error"]["code"] == -32600  # before initialize
            await websocket.send(json.dumps(INITIALIZE))
            assert json.loads(await websocket.recv())["id"] == 1
            bad: list[tuple[str | bytes, int, int]] = [
                ('{"jsonrpc":"2.0","id":2,"method":"ping","params":{"x":"\\ud800"}}', 2, -32700),
                (b'{"jsonrpc":"2.0","id":3,"method":"ping","params":{"x":"\xed\xa0\x80"}}', 3,
                 -32700),
                ('{"jsonrpc":"2.0","id":4,"method":"ping","params":' + deep + "}", 4, -32600),
                ('{"jsonrpc":"2.0","id":5,"method":null}', 5, -32600),
            ]
            for frame, request_id, code in bad:
                await websocket.send(frame)
                error = json.loads(await websocket.recv())
                assert (error["id"], error["error"]["code"]) == (request_id, code), frame
            await websocket.send(json.dumps({"jsonrpc": "2.0", "id": 6, "method": "ping"}))
            assert json.loads(await websocket.recv()) == {"jsonrpc": "2.0", "id": 6, "result": {}}
    assert websocket.close_code == CloseCode.NORMAL_CLOSURE
