"""A front's connections drop a client that takes nothing for ``send_timeout``, and only
such a client: over real sockets whose buffers are kept small, so that a large answer fills
them at once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import anyio
import pytest
from aiohttp import web
from http_harness import EVENT_TIMEOUT
from vmcp_transport_http.front_server import FrontServer

pytestmark = pytest.mark.anyio

ANSWER = b"x" * 300_000
SEND_TIMEOUT = 0.05


async def _answer(request: web.BaseRequest) -> web.Response:
    return web.Response(body=ANSWER)


@pytest.fixture
async def client() -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A connection to a :class:`FrontServer`, both ends' kernel buffers small."""
    loop = asyncio.get_running_loop()
    server_end, client_end = socket.socketpair()
    server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client_end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server = FrontServer(_answer, send_timeout=SEND_TIMEOUT, access_log=None)
    transport, _ = await loop.connect_accepted_socket(server, server_end)
    reader, writer = await asyncio.open_connection(sock=client_end, limit=4096)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        yield reader, writer
    finally:
        writer.close()
        transport.close()
        await server.shutdown(0)


async def _length(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    return int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])


async def test_a_client_that_takes_nothing_is_dropped(
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    reader, _ = client
    with anyio.fail_after(EVENT_TIMEOUT):
        length = await _length(reader)
        await asyncio.sleep(SEND_TIMEOUT * 10)  # the client takes nothing meanwhile
        received = len(await reader.read())  # what was on its way, then the end
    assert received < length


async def test_a_slow_client_that_keeps_taking_gets_all_of_its_answer(
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    # it empties the front's buffer far slower than send_timeout allows for a whole
    # pause, but takes some well within each period
    reader, _ = client
    with anyio.fail_after(EVENT_TIMEOUT):
        length = await _length(reader)
        received = 0
        while received < length:
            chunk = await reader.read(2048)
            assert chunk, f"dropped after {received} of {length} bytes"
            received += len(chunk)
            await asyncio.sleep(SEND_TIMEOUT / 5)  # the client's own pace
