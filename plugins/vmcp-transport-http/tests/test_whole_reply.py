"""A whole reply leaves as aiohttp's ``Response`` would send it, in one write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from vmcp_transport_http.whole_reply import JSON_HEADERS, WholeReply

pytestmark = pytest.mark.anyio

BODY = b'{"jsonrpc":"2.0","id":1,"result":{}}\n'


async def _handler(request: web.BaseRequest) -> web.StreamResponse:
    status = int(request.headers.get("X-Status", "200"))
    headers = {**JSON_HEADERS, "Mcp-Session-Id": "abc", "Retry-After": "2"}
    if request.headers.get("X-Close"):
        headers["Connection"] = "close"
    if request.headers.get("X-Unicode"):  # not Latin-1: aiohttp writes heads in UTF-8
        headers["X-Name"] = "café \u4e2d"
    if request.path == "/bad":
        return WholeReply(BODY, headers={"X-Bad": "a\r\nSet-Cookie: b"})
    if request.path == "/echo":  # a request header named back, whatever its bytes
        return WholeReply(BODY, headers={"X-Echo": request.headers["X-A"]})
    if request.path == "/whole":
        return WholeReply(BODY, status=status, headers=headers)
    return web.Response(body=BODY, status=status, headers=headers)


@pytest.fixture
async def port() -> AsyncIterator[int]:
    server = await asyncio.get_running_loop().create_server(
        web.Server(_handler, access_log=None), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _exchange(port: int, request: bytes, replies: int = 1
                    ) -> list[tuple[str, dict[str, str], bytes]]:
    """The replies to ``request`` on one connection: status line, headers (without
    ``Date``, which follows the clock), body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        seen = []
        for _ in range(replies):
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[:-2]
            fields = dict(line.split(": ", 1) for line in head[1:])
            assert fields.pop("Date").endswith(" GMT")
            body = await reader.readexactly(int(fields["Content-Length"]))
            seen.append((head[0], fields, body))
        return seen
    finally:
        writer.close()
        await writer.wait_closed()


def _post(path: str, version: str = "1.1", extra: str = "") -> bytes:
    return (f"POST {path} HTTP/{version}\r\nHost: x\r\nContent-Length: 2\r\n{extra}\r\n{{}}"
            ).encode()


@pytest.mark.parametrize(("version", "extra"), [
    ("1.1", ""),
    ("1.1", "Connection: close\r\n"),
    ("1.0", ""),
    ("1.0", "Connection: keep-alive\r\n"),
    ("1.1", "X-Status: 503\r\n"),
    ("1.1", "X-Close: 1\r\n"),
    ("1.1", "X-Unicode: 1\r\n"),
])
async def test_the_same_bytes_as_aiohttps_response(port: int, version: str, extra: str) -> None:
    whole = await _exchange(port, _post("/whole", version, extra))
    response = await _exchange(port, _post("/response", version, extra))
    assert whole == response
    assert whole[0][2] == BODY


async def test_a_kept_connection_serves_the_next_request(port: int) -> None:
    replies = await _exchange(port, _post("/whole") * 3, replies=3)
    assert [status for status, _, _ in replies] == ["HTTP/1.1 200 OK"] * 3
    assert all(body == BODY for _, _, body in replies)


async def test_a_header_with_a_line_break_sends_nothing(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_post("/bad"))
        assert await reader.read() == b""  # the connection ends; no header was split
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_request_header_named_back_keeps_its_bytes(port: int) -> None:
    # aiohttp decodes bytes that are not UTF-8 with surrogateescape: they go back as they came
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nX-A: caf\xc3\xa9 \xff\xfe\r\n"
                     b"Content-Length: 2\r\n\r\n{}")
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"\r\nX-Echo: caf\xc3\xa9 \xff\xfe\r\n" in head
    finally:
        writer.close()
        await writer.wait_closed()


async def _head_then_post(port: int, path: str) -> tuple[dict[str, str], bytes]:
    """The head a HEAD request gets, and the status line that follows it at once (no body
    came between)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() + _post(path))
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[1:-2]
        fields = dict(line.split(": ", 1) for line in head)
        del fields["Date"]
        return fields, await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_head_request_gets_the_head_alone(port: int) -> None:
    whole = await _head_then_post(port, "/whole")
    assert whole == await _head_then_post(port, "/response")
    assert whole[0]["Content-Length"] == str(len(BODY))
    assert whole[1] == b"HTTP/1.1 200 OK\r\n"
