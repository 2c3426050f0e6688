"""The Streamable HTTP back side against a scripted server: broken streams, errors, odd replies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from aiohttp import web
from http_harness import EVENT_TIMEOUT
from vmcp_transport_http.sse import encode_event
from vmcp_transport_http.streamable import StreamableHttpTransport

from vmcp.config import MountConfig
from vmcp.transports.base import Connection, Related

pytestmark = pytest.mark.anyio

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def scripted(post: Handler, get: Handler | None = None) -> AsyncIterator[str]:
    """Serve ``post`` (and ``get``) at ``/mcp`` on a free port; yield the URL."""
    app = web.Application()
    app.router.add_post("/mcp", post)
    if get is not None:
        app.router.add_get("/mcp", get)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/mcp"
    finally:
        await runner.cleanup()


async def connect(url: str) -> Connection:
    mount = MountConfig(id="scripted", transport="http", url=url)
    return await StreamableHttpTransport().connect(mount, {}, {})


async def receive(connection: Connection) -> Any:
    with anyio.fail_after(EVENT_TIMEOUT):
        return await connection.receive()


def reply(request_id: Any, result: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


async def test_a_broken_reply_stream_is_resumed_from_the_last_event_id() -> None:
    seen: list[str | None] = []

    async def post(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(encode_event("", event_id="s-0") + b"retry: 10\n\n")
        await response.write(encode_event('{"jsonrpc":"2.0","method":"n"}', event_id="s-1"))
        request.transport.close()  # type: ignore[union-attr]  # the connection breaks
        return response

    async def get(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Last-Event-ID"))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(encode_event(reply(1, {"ok": True}), event_id="s-2"))
        return response

    async with scripted(post, get) as url:
        connection = await connect(url)
        try:
            await connection.send({"jsonrpc": "2.0", "id": 1, "method": "slow"})
            # sent on request 1's stream, so it comes marked as belonging to request 1
            assert await receive(connection) == Related({"jsonrpc": "2.0", "method": "n"}, 1)
            assert await receive(connection) == json.loads(reply(1, {"ok": True}))
            assert seen == ["s-1"]
        finally:
            await connection.aclose()


async def test_http_errors_become_json_rpc_errors() -> None:
    async def post(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body["method"] == "refused":
            error = {"jsonrpc": "2.0", "id": None, "error": {"code": -32602, "message": "no"}}
            return web.json_response(error, status=400)
        if body["method"] == "accepted":
            return web.Response(status=202)
        if body["method"] == "text":
            return web.Response(text="hello")
        if body["method"] == "batch":
            return web.json_response([json.loads(reply(body["id"], 1)), "stray"])
        return web.Response(status=500, text="boom")

    async with scripted(post) as url:
        connection = await connect(url)
        try:
            await connection.send({"jsonrpc": "2.0", "id": 1, "method": "refused"})
            assert await receive(connection) == {
                "jsonrpc": "2.0",
                "id": 1,
                "error": {"code": -32602, "message": "no"},
            }
            for request_id, method, text in [
                (2, "accepted", "202"),
                (3, "text", "Content-Type"),
                (4, "crash", "HTTP 500"),
            ]:
                await connection.send({"jsonrpc": "2.0", "id": request_id, "method": method})
                answer = await receive(connection)
                assert answer["id"] == request_id and text in answer["error"]["message"]
            await connection.send({"jsonrpc": "2.0", "id": 5, "method": "batch"})
            assert await receive(connection) == json.loads(reply(5, 1))
            assert await receive(connection) == b'"stray"'  # not a message: handed over raw
        finally:
            await connection.aclose()


async def test_a_redirect_is_not_followed() -> None:
    async def post(request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect("http://elsewhere.invalid/mcp")

    async with scripted(post) as url:
        connection = await connect(url)
        try:
            await connection.send({"jsonrpc": "2.0", "id": 1, "method": "x"})
            answer = await receive(connection)
            assert "HTTP 307" in answer["error"]["message"]
        finally:
            await connection.aclose()


async def test_undecodable_replies_fail_their_request_and_later_ones_work() -> None:
    """A JSON reply with a lone surrogate or nested too deep: an error for that id at once;
    on an SSE reply stream the bad event is handed over raw and the stream goes on."""
    deep = "[" * 2000 + "]" * 2000

    async def post(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        request_id = body["id"]
        if body["method"] == "surrogate":
            text = f'{{"jsonrpc":"2.0","id":{request_id},"result":{{"t":"\\ud800"}}}}'
            return web.Response(text=text, content_type="application/json")
        if body["method"] == "deep":
            text = f'{{"jsonrpc":"2.0","id":{request_id},"result":{{"t":{deep}}}}}'
            return web.Response(text=text, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(encode_event('{"jsonrpc":"2.0","method":"n","params":' + deep + "}"))
        await response.write(encode_event(reply(request_id, {"ok": True})))
        return response

    async with scripted(post) as url:
        connection = await connect(url)
        try:
            for request_id, method in [(1, "surrogate"), (2, "deep")]:
                await connection.send({"jsonrpc": "2.0", "id": request_id, "method": method})
                answer = await receive(connection)
                assert answer["id"] == request_id
                assert answer["error"]["code"] == -32603
                assert "not valid JSON-RPC" in answer["error"]["message"]
            await connection.send({"jsonrpc": "2.0", "id": 3, "method": "streamed"})
            assert isinstance(await receive(connection), bytes)  # the deep notification
            assert await receive(connection) == json.loads(reply(3, {"ok": True}))
        finally:
            await connection.aclose()
