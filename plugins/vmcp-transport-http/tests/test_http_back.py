"""The back side: vmcp's connections to remote servers, against real SDK servers and our fronts."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import anyio
import pytest
from http_harness import EVENT_TIMEOUT, FakeHost, fixture_backend, serve_front
from vmcp_transport_http.legacy_sse import LegacySseTransport
from vmcp_transport_http.streamable import StreamableHttpTransport
from vmcp_transport_http.streamable_client import StreamableHttpConnection

from vmcp.config import MountConfig
from vmcp.transports.base import Connection, ConnectionClosed, Related, Transport

pytestmark = pytest.mark.anyio


def request(request_id: Any, method: str, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def call(request_id: Any, tool: str, meta: dict[str, Any] | None = None, **arguments: Any):
    params: dict[str, Any] = {"name": tool, "arguments": arguments}
    if meta is not None:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def initialize(request_id: Any = 0) -> dict[str, Any]:
    return request(
        request_id,
        "initialize",
        protocolVersion="2025-11-25",
        capabilities={"sampling": {}},
        clientInfo={"name": "vmcp-test", "version": "0"},
    )


async def connect(transport: Transport, url: str, **headers: str) -> Connection:
    mount = MountConfig(id="remote", transport=transport.name, url=url, headers=headers)
    return await transport.connect(mount, {}, dict(headers))


async def receive_until(connection: Connection, request_id: Any) -> list[dict[str, Any]]:
    """Every message received up to and including the response to ``request_id``.

    Messages the backend sent on a request's own stream must come marked with that request.
    """
    found: list[dict[str, Any]] = []
    with anyio.fail_after(EVENT_TIMEOUT):
        while True:
            message = await connection.receive()
            if isinstance(message, Related):
                assert message.request_id == request_id, message
                message = message.message
            assert isinstance(message, dict), message
            found.append(message)
            if message.get("id") == request_id and "method" not in message:
                return found


async def handshake(connection: Connection) -> dict[str, Any]:
    await connection.send(initialize())
    (reply,) = await receive_until(connection, 0)
    await connection.send(INITIALIZED)
    return reply


def text_of(reply: dict[str, Any]) -> str:
    return reply["result"]["content"][0]["text"]


async def test_streamable_http_against_an_sdk_server() -> None:
    async with fixture_backend("http") as url:
        connection = await connect(StreamableHttpTransport(), url, **{"X-Mount-Key": "k1"})
        try:
            reply = await handshake(connection)
            assert reply["result"]["serverInfo"]["name"] == "http-fixture"
            assert isinstance(connection, StreamableHttpConnection)
            assert connection.session_id and connection.protocol_version == "2025-11-25"

            await connection.send(call(1, "slow", {"progressToken": "p"}, steps=2))
            found = await receive_until(connection, 1)
            progress = [m["params"]["progress"] for m in found if "progress" in m.get("method", "")]
            logs = [m["params"]["data"] for m in found[:-1] if m["method"].endswith("message")]
            assert progress == [1, 2] and logs == ["did step 1", "did step 2"]
            assert text_of(found[-1]) == "done 2"

            await connection.send(call(2, "header", name="X-Mount-Key"))
            assert text_of((await receive_until(connection, 2))[-1]) == "k1"

            await connection.send(call(3, "sample", prompt="hello"))
            with anyio.fail_after(EVENT_TIMEOUT):
                related = await connection.receive()
            assert isinstance(related, Related) and related.request_id == 3
            ask = related.message
            assert ask["method"] == "sampling/createMessage"
            content = {"type": "text", "text": "hi"}
            answer = {"role": "assistant", "content": content, "model": "m"}
            await connection.send({"jsonrpc": "2.0", "id": ask["id"], "result": answer})
            assert text_of((await receive_until(connection, 3))[-1]) == "sampled: hi"
        finally:
            await connection.aclose()


async def test_streamable_http_json_replies_and_delete_on_close() -> None:
    async with fixture_backend("http", "--json") as url:
        connection = await connect(StreamableHttpTransport(), url)
        try:
            await handshake(connection)
            await connection.send(call(1, "add", a=2, b=3))
            await connection.send(call(2, "echo", text="x"))
            with anyio.fail_after(EVENT_TIMEOUT):  # the two replies may come in either order
                replies = [await connection.receive(), await connection.receive()]
            assert {r["id"]: text_of(r) for r in replies} == {1: "5", 2: "echo: x"}  # type: ignore[index]
            assert isinstance(connection, StreamableHttpConnection)
            session_id = connection.session_id
        finally:
            await connection.aclose()
        await connection.aclose()  # idempotent
        async with aiohttp.ClientSession() as http:
            headers = {
                "Mcp-Session-Id": session_id or "",
                "MCP-Protocol-Version": "2025-11-25",
                "Accept": "application/json, text/event-stream",
            }
            gone = await http.post(url, json=request(9, "tools/list"), headers=headers)
            assert gone.status == 404  # closing sent DELETE


async def test_a_forgotten_session_ends_the_connection() -> None:
    async with fixture_backend("http") as url:
        connection = await connect(StreamableHttpTransport(), url)
        try:
            await handshake(connection)
            assert isinstance(connection, StreamableHttpConnection)
            headers = {
                "Mcp-Session-Id": connection.session_id or "",
                "MCP-Protocol-Version": "2025-11-25",
            }
            async with aiohttp.ClientSession() as http:
                assert (await http.delete(url, headers=headers)).status == 200
            await connection.send(call(1, "echo", text="x"))
            with pytest.raises(ConnectionClosed, match="404"), anyio.fail_after(EVENT_TIMEOUT):
                while True:
                    await connection.receive()
            with pytest.raises(ConnectionClosed):
                await connection.send(call(2, "echo", text="y"))
        finally:
            await connection.aclose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_an_unreachable_server_ends_the_connection() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/mcp"
    connection = await connect(StreamableHttpTransport(), url)
    try:
        await connection.send(initialize())
        with pytest.raises(ConnectionClosed, match="cannot reach"), anyio.fail_after(EVENT_TIMEOUT):
            await connection.receive()
    finally:
        await connection.aclose()
    with pytest.raises(ConnectionClosed, match="cannot open"):
        await connect(LegacySseTransport(), f"http://127.0.0.1:{_closed_port()}/sse")


async def test_legacy_sse_against_an_sdk_server() -> None:
    async with fixture_backend("sse") as url:
        connection = await connect(LegacySseTransport(), url, **{"X-Mount-Key": "k2"})
        try:
            reply = await handshake(connection)
            assert reply["result"]["serverInfo"]["name"] == "http-fixture"
            await connection.send(call(1, "slow", {"progressToken": 5}, steps=1))
            found = await receive_until(connection, 1)
            assert [
                m["params"]["progressToken"] for m in found if "progress" in m.get("method", "")
            ] == [5]
            await connection.send(call(2, "sample", prompt="q"))
            with anyio.fail_after(EVENT_TIMEOUT):
                ask = await connection.receive()
            # the legacy transport has one event stream for everything: no relation
            assert isinstance(ask, dict)
            assert ask["method"] == "sampling/createMessage"
            answer = {"role": "assistant", "content": {"type": "text", "text": "a"}, "model": "m"}
            await connection.send({"jsonrpc": "2.0", "id": ask["id"], "result": answer})
            assert text_of((await receive_until(connection, 2))[-1]) == "sampled: a"
        finally:
            await connection.aclose()
        with pytest.raises(ConnectionClosed):
            await connection.send(call(3, "echo", text="late"))


async def test_streamable_back_against_our_front_uses_the_get_stream() -> None:
    host = FakeHost()
    transport = StreamableHttpTransport()
    async with serve_front(transport, host) as url:
        connection = await connect(transport, url)
        try:
            await handshake(connection)
            await connection.send(request(1, "unsolicited"))
            found = await receive_until(connection, 1)
            if len(found) == 1:  # the GET stream's message may come after the reply
                with anyio.fail_after(EVENT_TIMEOUT):
                    found.append(await connection.receive())  # type: ignore[arg-type]
            methods = {m.get("method") for m in found}
            assert "notifications/tools/list_changed" in methods

            await connection.send(request(2, "ask"))
            with anyio.fail_after(EVENT_TIMEOUT):
                related = await connection.receive()
            assert isinstance(related, Related) and related.request_id == 2
            ask = related.message
            assert ask["method"] == "sampling/createMessage"
            await connection.send({"jsonrpc": "2.0", "id": ask["id"], "result": {"ok": 1}})
            (reply,) = await receive_until(connection, 2)
            assert reply["result"] == {"answer": {"ok": 1}}
        finally:
            await connection.aclose()
        with anyio.fail_after(EVENT_TIMEOUT):
            await host.sessions[0].closed.wait()  # DELETE reached the front


async def test_legacy_back_against_our_legacy_front() -> None:
    host = FakeHost()
    transport = LegacySseTransport()
    async with serve_front(transport, host) as url:
        assert url.endswith("/sse")
        connection = await connect(transport, url)
        try:
            await handshake(connection)
            await connection.send(request(1, "chatty", count=2))
            found = await receive_until(connection, 1)
            assert [m.get("params") for m in found[:2]] == [{"n": 0}, {"n": 1}]
            assert found[2]["result"] == {"sent": 2}
        finally:
            await connection.aclose()
        with anyio.fail_after(EVENT_TIMEOUT):
            await host.sessions[0].closed.wait()  # the stream closing ended the session
