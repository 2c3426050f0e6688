"""A front's connections serve plain POSTs themselves and hand every other request, with
the bytes after it, to aiohttp's handler: over real sockets, the bytes on the wire compared
with what aiohttp alone sends."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import anyio
import pytest
from aiohttp import web
from http_harness import EVENT_TIMEOUT
from vmcp_transport_http.front_server import FrontConnection, FrontServer
from vmcp_transport_http.post_connection import (
    BODY_LIMIT,
    HEAD_LIMIT,
    PIPELINE_LIMIT,
    PostConnection,
)

pytestmark = pytest.mark.anyio

IDLE_TIMEOUT = 0.2
#: seconds a client's writes wait when the front has stopped reading (it would read them
#: in far less)
PAUSE_SEEN = 0.3
#: what the handler was asked, as it saw it (method, path, a header, body)
Seen = tuple[str, str, str | None, bytes]


class Front:
    """A :class:`FrontServer` whose POST route is ``/mcp``, on a loopback port, and what
    its handler saw."""

    def __init__(self, idle_timeout: float) -> None:
        self.seen: list[Seen] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.server = FrontServer(self.handle, send_timeout=5.0, post_paths=["/mcp"],
                                  handler_cancellation=True, access_log=None,
                                  keepalive_timeout=idle_timeout)
        self.port = 0

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Name back what came; ``/mcp?stream`` is never served here, ``X-Mode`` picks a
        reply: streamed, held until released, or a failure."""
        body = await request.read()
        self.seen.append((request.method, request.path, request.headers.get("X-A"), body))
        mode = request.headers.get("X-Mode")
        if mode == "hold":
            self.entered.set()
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        if mode == "fail":
            raise RuntimeError("the handler failed")
        if mode == "stream":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for part in (b"data: 1\n\n", b"data: 2\n\n"):
                await response.write(part)
            await response.write_eof()
            return response
        return web.Response(body=b"%s %s %d" % (request.method.encode(), request.path.encode(),
                                                len(body)))

    def protocols(self) -> list[type]:
        """The protocol of each open connection."""
        return [type(connection) for connection in self.server.connections]


@contextlib.asynccontextmanager
async def serving(idle_timeout: float = IDLE_TIMEOUT) -> AsyncIterator[Front]:
    front = Front(idle_timeout)
    listener = await asyncio.get_running_loop().create_server(front.server, "127.0.0.1", 0)
    front.port = listener.sockets[0].getsockname()[1]
    try:
        yield front
    finally:
        listener.close()
        await front.server.shutdown(0)
        await listener.wait_closed()


@pytest.fixture
async def front() -> AsyncIterator[Front]:
    async with serving() as front:
        yield front


@contextlib.asynccontextmanager
async def connection(front: Front) -> AsyncIterator[tuple[asyncio.StreamReader,
                                                          asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
    try:
        with anyio.fail_after(EVENT_TIMEOUT):
            yield reader, writer
    finally:
        writer.close()


def post(body: bytes = b"{}", *fields: str, path: str = "/mcp") -> bytes:
    head = "".join(f"{field}\r\n" for field in fields)
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n"
            .encode() + body)


async def reply(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """One response: status line, headers (lower-case names, no ``Date``), body (a chunked
    one put together)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[:-2]
    fields = {name.lower(): value for name, value in (line.split(": ", 1) for line in head[1:])}
    fields.pop("date")
    if fields.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readexactly(2)
        return head[0], fields, body
    return head[0], fields, await reader.readexactly(int(fields.get("content-length", "0")))


async def test_plain_posts_are_served_on_the_connection_in_order(front: Front) -> None:
    async with connection(front) as (reader, writer):
        writer.write(post(b"one") + post(b"three", "X-A: b"))  # pipelined, in one write
        assert (await reply(reader))[2] == b"POST /mcp 3"
        assert (await reply(reader))[2] == b"POST /mcp 5"
        writer.write(post(b""))
        assert (await reply(reader))[2] == b"POST /mcp 0"
        assert front.protocols() == [PostConnection]
    assert front.seen == [("POST", "/mcp", None, b"one"), ("POST", "/mcp", "b", b"three"),
                          ("POST", "/mcp", None, b"")]


async def test_a_body_arriving_in_pieces_is_read_whole(front: Front) -> None:
    async with connection(front) as (reader, writer):
        whole = post(b"x" * 5000)
        for start in range(0, len(whole), 1000):
            writer.write(whole[start:start + 1000])
            await writer.drain()
            await asyncio.sleep(0)  # separate segments, most likely
        assert (await reply(reader))[2] == b"POST /mcp 5000"


async def test_any_other_request_takes_the_connection_to_aiohttp_with_what_follows(
        front: Front) -> None:
    async with connection(front) as (reader, writer):
        writer.write(post(b"first"))
        assert (await reply(reader))[2] == b"POST /mcp 5"
        writer.write(b"GET /mcp HTTP/1.1\r\nHost: x\r\n\r\n" + post(b"after"))
        assert (await reply(reader))[2] == b"GET /mcp 0"
        assert (await reply(reader))[2] == b"POST /mcp 5"
        assert front.protocols() == [FrontConnection]


@pytest.mark.parametrize("request_bytes", [
    # chunked, compressed, expecting, of another version, to another path, too large
    b"POST /mcp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
    post(b"abcd", "Expect: 100-continue"),
    b"POST /mcp HTTP/1.0\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd",
    post(b"abcd", path="/mcp?x=1"),
    post(b"y" * (BODY_LIMIT + 1)),
], ids=["chunked", "expect", "http-1.0", "query", "large"])
async def test_a_post_that_is_not_plain_is_served_by_aiohttp(front: Front,
                                                             request_bytes: bytes) -> None:
    async with connection(front) as (reader, writer):
        writer.write(request_bytes)
        status, _, body = await reply(reader)
    assert status.endswith(" 200 OK")
    assert body.startswith(b"POST /mcp ")
    assert front.seen[0][3] in (b"abcd", b"y" * (BODY_LIMIT + 1))


@pytest.mark.parametrize("request_bytes", [
    b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"POST /mcp HTTP/1.1\r\nHo st: x\r\nContent-Length: 0\r\n\r\n",
    b"POST /mcp HTTP/1.1\r\nHost: x\nContent-Length: 0\r\n\r\n",
], ids=["length", "two-lengths", "name", "bare-lf"])
async def test_an_invalid_head_gets_aiohttps_400(front: Front, request_bytes: bytes) -> None:
    async with connection(front) as (reader, writer):
        writer.write(request_bytes)
        status, _, _ = await reply(reader)
    assert status.endswith(" 400 Bad Request")
    assert front.seen == []


async def test_a_head_longer_than_this_path_takes_goes_to_aiohttp(front: Front) -> None:
    async with connection(front) as (reader, writer):
        writer.write(post(b"{}", "X-A: " + "a" * HEAD_LIMIT))  # within aiohttp's limits
        assert (await reply(reader))[0] == "HTTP/1.1 200 OK"
        assert front.protocols() == [FrontConnection]
    async with connection(front) as (reader, writer):
        writer.write(b"POST /mcp" + b"x" * HEAD_LIMIT)  # a first line with no end in sight
        status, _, _ = await reply(reader)
    assert status.split()[1] in ("400", "414")
    assert len(front.seen) == 1


async def test_a_header_value_loses_its_surrounding_whitespace(front: Front) -> None:
    async with connection(front) as (reader, writer):
        writer.write(post(b"{}", "X-A:  padded \t "))
        await reply(reader)
    assert front.seen[0][2] == "padded"


async def test_the_reply_is_what_aiohttp_alone_sends(front: Front) -> None:
    """The same requests to this front and to aiohttp's own handler (a GET first hands the
    connection over) get the same bytes, a streamed reply's included."""
    requests = (post(b"{}", "X-Mode: stream") + post(b"{}")
                + post(b"{}", "Connection: close"))
    async with connection(front) as (reader, writer):
        writer.write(requests)
        ours = [await reply(reader) for _ in range(3)]
        assert await reader.read() == b""  # closed as asked
    async with connection(front) as (reader, writer):
        writer.write(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n" + requests)
        await reply(reader)
        theirs = [await reply(reader) for _ in range(3)]
        assert await reader.read() == b""
    assert ours == theirs
    assert ours[0][2] == b"data: 1\n\ndata: 2\n\n"
    assert ours[2][1]["connection"] == "close"


async def test_a_failing_handler_gets_500_and_the_connection_ends(front: Front) -> None:
    async with connection(front) as (reader, writer):
        writer.write(post(b"{}", "X-Mode: fail") + post(b"{}"))
        status, _, _ = await reply(reader)
        assert status == "HTTP/1.1 500 Internal Server Error"
        assert await reader.read() == b""
    assert len(front.seen) == 1


async def test_a_client_that_leaves_cancels_its_request(front: Front) -> None:
    async with connection(front) as (_, writer):
        writer.write(post(b"{}", "X-Mode: hold"))
        await front.entered.wait()
    await front.cancelled.wait()


async def test_a_connection_idle_or_with_half_a_head_ends(front: Front) -> None:
    for sent in (b"", b"POST /mcp HTTP/1.1\r\nHost: x\r\n"):
        async with connection(front) as (reader, writer):
            writer.write(sent)
            assert await reader.read() == b""  # closed after IDLE_TIMEOUT
    assert front.seen == []


async def test_a_request_being_served_outlives_the_idle_timeout(front: Front) -> None:
    async with connection(front) as (reader, writer):
        writer.write(post(b"{}", "X-Mode: hold"))
        await front.entered.wait()
        await asyncio.sleep(IDLE_TIMEOUT * 3)
        front.release.set()
        assert (await reply(reader))[0] == "HTTP/1.1 200 OK"


async def test_shutdown_ends_idle_connections_and_lets_a_request_finish() -> None:
    async with serving(idle_timeout=EVENT_TIMEOUT * 2) as front, \
            connection(front) as (idle_reader, _), connection(front) as (reader, writer):
        writer.write(post(b"{}", "X-Mode: hold"))
        await front.entered.wait()
        front.server.pre_shutdown()
        assert await idle_reader.read() == b""
        stopping = asyncio.ensure_future(front.server.shutdown(EVENT_TIMEOUT))
        done, _ = await asyncio.wait({stopping}, timeout=PAUSE_SEEN)
        assert not done, "the shutdown did not wait for the request being served"
        front.release.set()
        status, _, _ = await reply(reader)
        assert status == "HTTP/1.1 200 OK"
        assert await reader.read() == b""
        await stopping
        assert not front.cancelled.is_set()


async def test_what_is_sent_ahead_of_its_turn_waits_for_it(front: Front) -> None:
    """More than the front reads ahead comes behind a request being served: the front stops
    reading (the client's writes then wait), and answers it all in order once it may."""
    ahead = [post(b"z" * (BODY_LIMIT - 10)) for _ in range(2 * PIPELINE_LIMIT // BODY_LIMIT)]
    loop = asyncio.get_running_loop()
    server_end, client_end = socket.socketpair()
    server_end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    await loop.connect_accepted_socket(front.server, server_end)
    reader, writer = await asyncio.open_connection(sock=client_end)
    try:
        with anyio.fail_after(EVENT_TIMEOUT):
            writer.write(post(b"{}", "X-Mode: hold"))
            await front.entered.wait()
            writer.write(b"".join(ahead))
            draining = asyncio.ensure_future(writer.drain())
            done, _ = await asyncio.wait({draining}, timeout=PAUSE_SEEN)
            assert not done, "the front read everything sent ahead"
            assert len(front.seen) == 1
            front.release.set()
            replies = [await reply(reader) for _ in range(len(ahead) + 1)]
            await draining
    finally:
        writer.close()
    assert [body for _, _, body in replies] == [
        b"POST /mcp 2", *[b"POST /mcp %d" % (BODY_LIMIT - 10)] * len(ahead)]
