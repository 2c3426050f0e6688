"""The Streamable HTTP front, in process, against a scripted fake gateway, over real sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import anyio
import pytest
from http_harness import EVENT_TIMEOUT, FakeHost, serve_front
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from vmcp_transport_http import streamable_server
from vmcp_transport_http.sse import ServerSentEvent, iter_events
from vmcp_transport_http.streamable import StreamableHttpTransport

from vmcp.config import ConfigError
from vmcp.protocol.errors import REQUEST_CANCELLED

pytestmark = pytest.mark.anyio

BOTH = "application/json, text/event-stream"
SESSION = "Mcp-Session-Id"


def message(method: str, request_id: Any = None, **params: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        msg["id"] = request_id
    if params:
        msg["params"] = params
    return msg


INITIALIZE = message(
    "initialize", 0, protocolVersion="2025-11-25", capabilities={}, clientInfo={"name": "t"}
)


class Client:
    """Raw HTTP calls to one front."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url
        self.session_id: str | None = None

    def headers(self, accept: str = BOTH, **extra: str) -> dict[str, str]:
        headers = {"Accept": accept, "MCP-Protocol-Version": "2025-11-25", **extra}
        if self.session_id is not None:
            headers[SESSION] = self.session_id
        return headers

    async def post(self, body: Any, accept: str = BOTH, **extra: str) -> aiohttp.ClientResponse:
        return await self.http.post(self.url, json=body, headers=self.headers(accept, **extra))

    async def initialize(self) -> list[ServerSentEvent]:
        response = await self.post(INITIALIZE)
        assert response.status == 200, await response.text()
        self.session_id = response.headers[SESSION]
        return await events(response)


async def events(
    response: aiohttp.ClientResponse, count: int | None = None
) -> list[ServerSentEvent]:
    """The events of a reply: all of them, or the first ``count``. A JSON body (a quick
    reply holding only responses) is one event without an id."""
    if response.content_type == "application/json":
        return [ServerSentEvent(data=(await response.read()).decode())]
    assert response.content_type == "text/event-stream"
    found: list[ServerSentEvent] = []
    with anyio.fail_after(EVENT_TIMEOUT):
        async for event in iter_events(response.content.iter_any(), 1 << 20):
            found.append(event)
            if len(found) == count:
                break
    return found


def data(found: list[ServerSentEvent]) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in found if e.data]


@pytest.fixture
async def host() -> FakeHost:
    return FakeHost()


@pytest.fixture
async def client(host: FakeHost) -> AsyncIterator[Client]:
    async with (
        serve_front(StreamableHttpTransport(), host, session_idle_timeout=60) as url,
        aiohttp.ClientSession() as http,
    ):
        yield Client(http, url)


async def test_ready_reports_the_real_port_and_path(client: Client) -> None:
    assert client.url.startswith("http://127.0.0.1:")
    assert client.url.endswith("/mcp")
    assert int(client.url.split(":")[2].split("/")[0]) > 0


async def test_initialize_mints_a_random_session_and_answers_in_one_json_body(
    client: Client,
) -> None:
    response = await client.post(INITIALIZE)
    assert response.content_type == "application/json"  # a quick reply of responses only
    client.session_id = response.headers[SESSION]
    assert len(client.session_id) >= 40
    assert all(0x21 <= ord(c) <= 0x7E for c in client.session_id)
    assert (await response.json())["result"]["protocolVersion"] == "2025-11-25"
    other = Client(client.http, client.url)
    await other.initialize()
    assert other.session_id != client.session_id


async def test_priming_follows_the_negotiated_version_and_sets_a_retry_delay(
    client: Client,
) -> None:
    await client.initialize()
    # The version header names an older revision, but the session negotiated 2025-11-25.
    old_header = {"MCP-Protocol-Version": "2025-03-26"}
    found = await events(await client.post(message("chatty", 1), **old_header))
    assert found[0].data == "" and found[0].retry == 1000
    assert data(found)[-1] == {"jsonrpc": "2.0", "id": 1, "result": {"sent": 1}}

    older = Client(client.http, client.url)
    params = {**INITIALIZE["params"], "protocolVersion": "2025-06-18"}
    response = await older.post({**INITIALIZE, "params": params})
    older.session_id = response.headers[SESSION]
    assert all(e.data for e in await events(response))
    found = await events(await older.post(message("chatty", 1), **old_header))
    assert len(found) == 2 and all(e.data for e in found)


async def test_notifications_and_responses_get_202(client: Client, host: FakeHost) -> None:
    await client.initialize()
    response = await client.post(message("notifications/initialized"))
    assert response.status == 202
    response = await client.post({"jsonrpc": "2.0", "id": "x", "result": {}})
    assert response.status == 202
    assert host.sessions[0].received[-2:] == [
        message("notifications/initialized"),
        {"jsonrpc": "2.0", "id": "x", "result": {}},
    ]


async def test_a_draining_front_refuses_new_requests_but_takes_what_calls_need(
        client: Client, host: FakeHost) -> None:
    """While the gateway stops: a request (of a session, a new session, or a 2026-07-28 one)
    gets 503 with ``Retry-After``; notifications and responses still reach the session."""
    await client.initialize()
    host.draining = True
    modern = message("tools/list", 7, _meta={
        "io.modelcontextprotocol/protocolVersion": "2026-07-28"})
    for body, extra in ((message("tools/list", 1), {}), (INITIALIZE, {}),
                        (modern, {"MCP-Protocol-Version": "2026-07-28"})):
        opening = body is INITIALIZE
        saved, client.session_id = client.session_id, None if opening else client.session_id
        response = await client.post(body, **extra)
        client.session_id = saved
        assert response.status == 503, await response.text()
        assert response.headers["Retry-After"] == "1"
        # the connection ends with the answer: a balancer opens a new one for its next request
        assert response.headers["Connection"] == "close"
    response = await client.post(message("notifications/cancelled", requestId=3))
    assert response.status == 202
    response = await client.post({"jsonrpc": "2.0", "id": "x", "result": {}})
    assert response.status == 202
    assert host.sessions[0].received[-1] == {"jsonrpc": "2.0", "id": "x", "result": {}}
    assert len(host.sessions) == 1  # no session was opened while draining


async def test_related_messages_go_on_the_post_stream(client: Client) -> None:
    await client.initialize()
    found = data(await events(await client.post(message("chatty", 7, count=3))))
    assert [m.get("params") for m in found[:3]] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert found[3] == {"jsonrpc": "2.0", "id": 7, "result": {"sent": 3}}


async def test_unrelated_messages_go_on_the_get_stream(client: Client) -> None:
    await client.initialize()
    reply = data(await events(await client.post(message("unsolicited", 1))))
    assert reply == [{"jsonrpc": "2.0", "id": 1, "result": {}}]
    stream = await client.http.get(client.url, headers=client.headers("text/event-stream"))
    assert stream.status == 200
    (note,) = data(await events(stream, 1))
    assert note["method"] == "notifications/tools/list_changed"
    stream.close()


async def test_a_json_only_client_gets_json_and_related_messages_on_get(client: Client) -> None:
    await client.initialize()
    response = await client.post(message("chatty", 3, count=2), accept="application/json")
    assert response.status == 200 and response.content_type == "application/json"
    assert await response.json() == {"jsonrpc": "2.0", "id": 3, "result": {"sent": 2}}
    stream = await client.http.get(client.url, headers=client.headers("text/event-stream"))
    assert [m["params"] for m in data(await events(stream, 2))] == [{"n": 0}, {"n": 1}]
    stream.close()


async def test_a_batch_gets_every_reply(client: Client) -> None:
    await client.initialize()
    batch = [message("echo", 1, v=1), message("echo", 2, v=2)]
    quick = await client.post(batch)  # responses only: one JSON array
    assert quick.content_type == "application/json"
    assert sorted(m["id"] for m in await quick.json()) == [1, 2]
    found = data(await events(await client.post([message("chatty", 5), message("echo", 6)])))
    assert sorted(m["id"] for m in found if "id" in m) == [5, 6]
    response = await client.post([message("echo", 3, v=3), message("echo", 4)], "application/json")
    assert [m["id"] for m in await response.json()] == [3, 4]


async def test_a_server_to_client_request_is_answered_by_post(client: Client) -> None:
    await client.initialize()
    response = await client.post(message("ask", 5))
    (ask,) = data(await events(response, 2))[-1:]
    assert ask["method"] == "sampling/createMessage"
    answer = await client.post({"jsonrpc": "2.0", "id": ask["id"], "result": {"text": "hi"}})
    assert answer.status == 202
    rest = data(await events(response))
    assert rest == [{"jsonrpc": "2.0", "id": 5, "result": {"answer": {"text": "hi"}}}]


async def test_resume_a_broken_stream_after_last_event_id(client: Client) -> None:
    await client.initialize()
    held = await client.post(message("hold", 1))
    (priming,) = await events(held, 1)
    held.close()  # the connection breaks before the reply
    release = await client.post(message("release", 2))
    assert data(await events(release)) == [{"jsonrpc": "2.0", "id": 2, "result": {}}]
    headers = client.headers("text/event-stream", **{"Last-Event-ID": priming.id or ""})
    resumed = await client.http.get(client.url, headers=headers)
    replay = await events(resumed)
    assert data(replay) == [{"jsonrpc": "2.0", "id": 1, "result": {"released": True}}]
    assert replay[0].id == f"{priming.id.split('-')[0]}-1"  # type: ignore[union-attr]
    again = await client.http.get(client.url, headers=headers)
    assert data(await events(again)) == data(replay)  # the buffer keeps it for another try
    done = {**headers, "Last-Event-ID": replay[0].id or ""}
    assert (await client.http.get(client.url, headers=done)).status == 404


async def test_a_cancelled_request_ends_its_stream(client: Client, host: FakeHost) -> None:
    await client.initialize()
    held = await client.post(message("hold", 1))
    await events(held, 1)
    cancel = message("notifications/cancelled", requestId=1, reason="changed my mind")
    assert (await client.post(cancel)).status == 202
    (ended,) = data(await events(held))
    assert ended == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {"code": REQUEST_CANCELLED, "message": "Request cancelled"},
    }
    assert host.sessions[0].received[-1] == cancel  # the gateway was told, too


async def test_a_request_id_already_in_flight_is_refused(client: Client) -> None:
    await client.initialize()
    held = await client.post(message("hold", 1))
    await events(held, 1)
    assert (await client.post(message("echo", 1))).status == 409
    held.close()


async def test_session_errors(client: Client) -> None:
    no_session = await client.post(message("tools/list", 1))
    assert no_session.status == 400
    # server/discover is always a 2026-07-28 request, and one without its _meta is refused
    discover = await client.post(message("server/discover", 9))
    assert discover.status == 400
    body = await discover.json()
    assert body["id"] == 9 and body["error"]["code"] == -32602
    client.session_id = "not-a-session"
    unknown = await client.post(message("tools/list", 1))
    assert unknown.status == 404
    assert (await unknown.json())["error"]["code"] == -32600


async def test_delete_ends_the_session(client: Client, host: FakeHost) -> None:
    await client.initialize()
    response = await client.http.delete(client.url, headers=client.headers())
    assert response.status == 200
    with anyio.fail_after(EVENT_TIMEOUT):
        await host.sessions[0].closed.wait()
    assert (await client.post(message("echo", 1))).status == 404
    assert (await client.http.delete(client.url, headers=client.headers())).status == 404


async def test_protocol_version_header(client: Client) -> None:
    await client.initialize()
    bad = await client.post(message("echo", 1), **{"MCP-Protocol-Version": "1999-01-01"})
    assert bad.status == 400
    assert "1999-01-01" in (await bad.json())["error"]["message"]
    headers = client.headers()
    del headers["MCP-Protocol-Version"]  # absent: assumed 2025-03-26, accepted
    ok = await client.http.post(client.url, json=message("echo", 2), headers=headers)
    assert data(await events(ok)) == [{"jsonrpc": "2.0", "id": 2, "result": {}}]


async def test_malformed_requests(client: Client) -> None:
    await client.initialize()
    headers = {**client.headers(), "Content-Type": "application/json"}
    bad_json = await client.http.post(client.url, data=b"{nope", headers=headers)
    assert bad_json.status == 400
    assert (await bad_json.json())["error"]["code"] == -32700
    text = await client.http.post(
        client.url, data=b"{}", headers={**headers, "Content-Type": "text/plain"}
    )
    assert text.status == 415
    assert (await client.post(message("echo", 1), accept="text/html")).status == 406


async def test_host_and_origin_are_checked(client: Client) -> None:
    evil = await client.post(INITIALIZE, Origin="http://evil.example")
    assert evil.status == 403
    rebound = await client.post(INITIALIZE, Host="evil.example:3000")
    assert rebound.status == 403
    # a page on another port of this machine is another site; the front's own origin is not
    other_port = await client.post(INITIALIZE, Origin="http://localhost:5173", Host="localhost:1")
    assert other_port.status == 403
    own = await client.post(INITIALIZE, Origin="http://localhost:1", Host="localhost:1")
    assert own.status == 200


async def test_cors_for_accepted_origins_only(client: Client) -> None:
    """A browser client on an accepted origin gets its preflight answered and can read the
    session id; a refused origin gets neither."""
    page = "http://" + urlsplit(client.url).netloc  # the front's own origin
    preflight = await client.http.options(client.url, headers={
        "Origin": page, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, mcp-session-id"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == page
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Mcp-Session-Id" in preflight.headers["Access-Control-Allow-Headers"]

    answer = await client.post(INITIALIZE, Origin=page)
    assert answer.status == 200
    assert answer.headers["Access-Control-Allow-Origin"] == page
    assert "Mcp-Session-Id" in answer.headers["Access-Control-Expose-Headers"]
    assert answer.headers[SESSION]

    plain = await client.post(INITIALIZE)  # no Origin: not a browser, no CORS headers
    assert "Access-Control-Allow-Origin" not in plain.headers

    for refused in ("http://evil.example", "http://localhost:5173"):
        evil = await client.http.options(client.url, headers={
            "Origin": refused, "Access-Control-Request-Method": "POST"})
        assert evil.status == 403
        assert "Access-Control-Allow-Origin" not in evil.headers


async def test_an_origin_no_browser_sends_is_refused_even_where_any_is_allowed(
        host: FakeHost) -> None:
    """With ``allowed_origins = ["*"]`` an accepted origin is echoed back; one that is not
    printable ASCII gets a 403 rather than a reply whose head cannot be written (the
    connection used to end with no answer at all)."""
    async with (
        serve_front(StreamableHttpTransport(), host, allowed_origins=["*"]) as url,
        aiohttp.ClientSession() as http,
    ):
        client = Client(http, url)
        page = await client.post(INITIALIZE, Origin="http://app.example")
        assert page.status == 200
        assert page.headers["Access-Control-Allow-Origin"] == "http://app.example"
        for origin in ("http://\u4e2d.example", "http://caf\u00e9.example"):
            refused = await client.post(INITIALIZE, Origin=origin)
            assert refused.status == 403
            assert "Origin" in (await refused.json())["error"]["message"]


def _post_head(url: str) -> bytes:
    """The start of a POST head to the front's endpoint."""
    parts = urlsplit(url)
    return f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: {BOTH}\r\n".encode()


async def _raw(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """A connection to the front, and the start of a POST head to its endpoint."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    return reader, writer, _post_head(url)


async def _reply(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """One response: its status line, headers (lower-case names) and body."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[:-2]
    fields = {name.lower(): value for name, value in (line.split(": ", 1) for line in head[1:])}
    return head[0], fields, await reader.readexactly(int(fields["content-length"]))


async def test_a_client_expecting_100_continue_is_asked_for_its_body(client: Client) -> None:
    """curl holds back a large body until the server says ``100 Continue`` (unasked, it
    waits a second): the front says so, then answers the request."""
    body = json.dumps(INITIALIZE).encode()
    reader, writer, head = await _raw(client.url)
    with anyio.fail_after(EVENT_TIMEOUT):
        try:
            writer.write(head + b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode())
            # the body goes only once asked for
            assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(body)
            status, fields, reply = await _reply(reader)
            assert status == "HTTP/1.1 200 OK"
            assert fields[SESSION.lower()]
            assert json.loads(reply)["result"]["protocolVersion"]
        finally:
            writer.close()


async def test_a_request_refused_before_its_body_is_asked_for_ends_its_connection(
        client: Client) -> None:
    """A refusal the head decides (415 here) goes out at once, without 100 Continue, and
    ends the connection (``Connection: close``): the client never sends the body, so
    whatever it sent next would be taken for it. Another expectation than 100-continue is
    refused with 417."""
    for extra, status in ((b"Content-Type: text/plain\r\nExpect: 100-continue\r\n", 415),
                          (b"Content-Type: application/json\r\nExpect: magic\r\n", 417)):
        reader, writer, head = await _raw(client.url)
        with anyio.fail_after(EVENT_TIMEOUT):
            try:
                writer.write(head + extra + b"Content-Length: 100\r\n\r\n")
                line, fields, reply = await _reply(reader)
                assert line.split(" ", 2)[1] == str(status)
                assert json.loads(reply)["error"]["message"]
                assert fields["connection"] == "close"
            finally:
                writer.close()


async def test_a_body_held_back_is_refused_in_time_and_gives_its_turn_back(
        host: FakeHost) -> None:
    """A client that sends its head and only part of its body gets 408 once
    ``body_timeout`` has passed, and the connection ends; the turn it held among the POSTs
    handled at once is free again (here the only one)."""
    async with (
        serve_front(StreamableHttpTransport(), host, body_timeout=0.2,
                    max_concurrent_requests=1, queue_timeout=0) as url,
        aiohttp.ClientSession() as http,
    ):
        reader, writer, head = await _raw(url)
        with anyio.fail_after(EVENT_TIMEOUT):
            try:
                writer.write(head + b"Content-Type: application/json\r\nContent-Length: 100"
                             b"\r\n\r\n" + b'{"jsonrpc":"2.0","id":"late","method":"initial')
                line, fields, reply = await _reply(reader)
                assert line == "HTTP/1.1 408 Request Timeout"
                assert fields["connection"] == "close"
                error = json.loads(reply)
                assert error["id"] == "late"  # read from what had come
                assert "0.2 s" in error["error"]["message"]
            finally:
                writer.close()
            assert (await Client(http, url).post(INITIALIZE)).status == 200


async def test_a_client_that_reads_nothing_is_dropped_and_gives_its_turn_back(
        host: FakeHost) -> None:
    """A client that asks for a large answer and reads none of it fills the buffers; after
    ``send_timeout`` its connection is dropped and the turn its POST held (here the only
    one) serves the next POST, which waits for it."""
    async with (
        serve_front(StreamableHttpTransport(), host, send_timeout=0.2, max_concurrent_requests=1,
                    queue_timeout=EVENT_TIMEOUT, max_message_bytes=32 << 20) as url,
        aiohttp.ClientSession() as http,
    ):
        client = Client(http, url)
        await client.initialize()
        body = json.dumps(message("echo", 1, data="x" * (24 << 20))).encode()
        _, writer, head = await _raw(url)  # its reader is never read
        with anyio.fail_after(EVENT_TIMEOUT):
            try:
                writer.write(head + f"Content-Type: application/json\r\nMcp-Session-Id: "
                             f"{client.session_id}\r\nContent-Length: {len(body)}\r\n\r\n"
                             .encode() + body)
                await writer.drain()  # sent whole; its answer is never read
                assert (await client.post(message("echo", 2, n=1))).status == 200
            finally:
                writer.close()


async def test_the_front_serves_its_routes_only(client: Client) -> None:
    """An unknown path is 404 and a method the path does not serve 405 with ``Allow``; both
    still pass the Host check first, and a browser's preflight is answered on any path."""
    base = "http://" + urlsplit(client.url).netloc
    unknown = await client.http.post(base + "/elsewhere", json=INITIALIZE)
    assert unknown.status == 404
    assert (await client.http.get(base + "/elsewhere", headers={"Host": "evil.example"})
            ).status == 403
    put = await client.http.put(client.url, json=INITIALIZE)
    assert put.status == 405
    assert set(put.headers["Allow"].split(",")) == {"GET", "POST", "DELETE"}
    preflight = await client.http.options(base + "/elsewhere", headers={
        "Origin": base, "Access-Control-Request-Method": "POST"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == base
    assert (await client.http.get(base + "/livez")).status == 200


async def test_body_size_limit(host: FakeHost) -> None:
    async with (
        serve_front(StreamableHttpTransport(), host, max_message_bytes=2048) as url,
        aiohttp.ClientSession() as http,
    ):
        big = {**INITIALIZE, "params": {**INITIALIZE["params"], "pad": "x" * 4096}}
        response = await http.post(url, json=big, headers={"Accept": BOTH})
        assert response.status == 413

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(8):
                yield b" " * 1024  # no Content-Length: the limit applies while reading

        headers = {"Accept": BOTH, "Content-Type": "application/json"}
        streamed = await http.post(url, data=chunks(), headers=headers)
        assert streamed.status == 413
    assert host.sessions == []


async def test_refusals_before_the_body_is_read_name_its_request() -> None:
    """401, 403, 415 and 413 (declared, or found while reading) name the request's id."""
    host = FakeHost("alice")
    async with (
        serve_front(StreamableHttpTransport(), host, max_message_bytes=2048) as url,
        aiohttp.ClientSession() as http,
    ):
        call = message("initialize", "call-7", protocolVersion="2025-11-25")
        headers = {"Accept": BOTH, "Content-Type": "application/json"}

        async def refused(body: Any, status: int, **extra: str) -> None:
            response = await http.post(url, data=body, headers={**headers, **extra})
            assert response.status == status
            assert (await response.json())["id"] == "call-7"

        await refused(json.dumps(call), 401)
        await refused(json.dumps(call), 403, Authorization="Bearer alice",
                      Origin="http://evil.example")
        await refused(json.dumps(call), 415, Authorization="Bearer alice",
                      **{"Content-Type": "text/plain"})
        big = json.dumps({**call, "params": {"pad": "x" * 4096}})
        await refused(big, 413, Authorization="Bearer alice")

        async def chunks() -> AsyncIterator[bytes]:
            yield big.encode()[:1024]  # no Content-Length: found too large while reading
            yield big.encode()[1024:]

        await refused(chunks(), 413, Authorization="Bearer alice")
        # a notification has no id to name; a refusal after reading still names it
        response = await http.post(url, data=json.dumps(message("x")), headers=headers)
        assert response.status == 401 and (await response.json())["id"] is None
    assert host.sessions == []


async def test_idle_sessions_expire(host: FakeHost) -> None:
    async with (
        serve_front(StreamableHttpTransport(), host, session_idle_timeout=0.2) as url,
        aiohttp.ClientSession() as http,
    ):
        client = Client(http, url)
        await client.initialize()
        with anyio.fail_after(EVENT_TIMEOUT):
            await host.sessions[0].closed.wait()
        assert (await client.post(message("echo", 1))).status == 404


async def test_a_used_session_outlives_its_first_idle_deadline(host: FakeHost) -> None:
    async with (
        serve_front(StreamableHttpTransport(), host, session_idle_timeout=0.3) as url,
        aiohttp.ClientSession() as http,
    ):
        client = Client(http, url)
        await client.initialize()
        for n in range(4):  # used every 0.1 s, past the first deadline (0.3 s)
            await anyio.sleep(0.1)
            response = await client.post(message("echo", n))
            assert data(await events(response)) == [{"jsonrpc": "2.0", "id": n, "result": {}}]
        assert not host.sessions[0].closed.is_set()
        with anyio.fail_after(EVENT_TIMEOUT):
            await host.sessions[0].closed.wait()  # then idle: it expires


async def test_authentication_and_session_owners() -> None:
    host = FakeHost("alice", "bob")
    async with (
        serve_front(StreamableHttpTransport(), host) as url,
        aiohttp.ClientSession() as http,
    ):
        client = Client(http, url)
        refused = await client.post(INITIALIZE)
        assert refused.status == 401
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        response = await client.post(INITIALIZE, Authorization="Bearer alice")
        assert response.status == 200
        assert host.sessions[0].principal is not None
        assert host.sessions[0].principal.name == "alice"
        client.session_id = response.headers[SESSION]
        assert (await client.post(message("echo", 1))).status == 401
        # a session answers only to whoever opened it
        assert (await client.post(message("echo", 1), Authorization="Bearer bob")).status == 404
        mine = await client.post(message("echo", 1), Authorization="Bearer alice")
        assert data(await events(mine)) == [{"jsonrpc": "2.0", "id": 1, "result": {}}]


async def test_the_session_count_is_bounded(host: FakeHost) -> None:
    async with (
        serve_front(StreamableHttpTransport(), host, max_sessions=1, reclaim_after=0) as url,
        aiohttp.ClientSession() as http,
    ):
        first = Client(http, url)
        await first.initialize()
        held = await first.post(message("hold", 1))  # a request in flight: not reclaimable
        await events(held, 1)
        refused = await Client(http, url).post(INITIALIZE)
        assert refused.status == 503 and refused.headers["Retry-After"] == "1"
        assert (await first.post(message("release", 2))).status == 200
        await events(held)
        # the first session now rests: it is reclaimed for a new client instead of a refusal
        second = Client(http, url)
        await second.initialize()
        assert (await first.post(message("echo", 3))).status == 404
        assert (await second.post(message("echo", 3))).status == 200


async def test_a_public_bind_without_auth_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"refusing to serve http on '0\.0\.0\.0'"):
        async with serve_front(StreamableHttpTransport(), FakeHost(), host="0.0.0.0"):
            pass


async def test_bad_settings_are_reported_with_their_location() -> None:
    with pytest.raises(ConfigError) as caught:
        async with serve_front(StreamableHttpTransport(), FakeHost(), path="mcp", prot=1):
            pass
    assert any(p.startswith("transports.http.path:") for p in caught.value.problems)
    assert "transports.http.prot: unknown setting" in caught.value.problems


async def test_the_sdk_client_works_against_the_front(host: FakeHost) -> None:
    async with serve_front(StreamableHttpTransport(), host) as url:
        async with (
            streamable_http_client(url) as (read, write),
            ClientSession(read, write) as session,
        ):
            with anyio.fail_after(EVENT_TIMEOUT):
                result = await session.initialize()
            assert result.server_info.name == "fake"
        with anyio.fail_after(EVENT_TIMEOUT):
            await host.sessions[0].closed.wait()  # the SDK sent DELETE on the way out
    received = [m.get("method") for m in host.sessions[0].received]
    assert received == ["initialize", "notifications/initialized"]


async def test_a_quick_reply_is_one_complete_body(client: Client) -> None:
    await client.initialize()
    response = await client.post(message("chatty", 4, count=2))
    assert int(response.headers["Content-Length"]) > 0  # not streamed in chunks
    found = await events(response)
    assert found[0].data == "" and found[0].retry == 1000  # the priming event still leads
    assert [e.id for e in found] == ["2-0", "2-1", "2-2", "2-3"]
    assert data(found)[-1] == {"jsonrpc": "2.0", "id": 4, "result": {"sent": 2}}


async def test_a_slow_reply_streams_and_its_headers_do_not_wait_for_it(client: Client) -> None:
    older = {**INITIALIZE, "params": {**INITIALIZE["params"], "protocolVersion": "2025-06-18"}}
    response = await client.post(older)
    client.session_id = response.headers[SESSION]
    await events(response)
    old_header = {"MCP-Protocol-Version": "2025-06-18"}
    with anyio.fail_after(EVENT_TIMEOUT):
        held = await client.post(message("hold", 1), **old_header)  # returns with the headers
    assert held.status == 200 and "Content-Length" not in held.headers
    release = await client.post(message("release", 2), **old_header)
    assert data(await events(release)) == [{"jsonrpc": "2.0", "id": 2, "result": {}}]
    assert data(await events(held)) == [{"jsonrpc": "2.0", "id": 1, "result": {"released": True}}]


async def test_related_messages_are_not_held_back_for_the_reply(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A grace far beyond the test's patience: only a reply may be waited for, never a
    # server->client request that the reply depends on.
    monkeypatch.setattr(streamable_server, "REPLY_GRACE", 3600.0)
    async with (
        serve_front(StreamableHttpTransport(), host) as url,
        aiohttp.ClientSession() as http,
    ):
        client = Client(http, url)
        with anyio.fail_after(EVENT_TIMEOUT):
            await client.initialize()  # answered at once: not waited for either
            response = await client.post(message("ask", 5))
            (priming, ask) = await events(response, 2)
        assert priming.data == "" and json.loads(ask.data)["method"] == "sampling/createMessage"
        answer = {"jsonrpc": "2.0", "id": json.loads(ask.data)["id"], "result": {"text": "hi"}}
        assert (await client.post(answer)).status == 202
        rest = data(await events(response))
        assert rest == [{"jsonrpc": "2.0", "id": 5, "result": {"answer": {"text": "hi"}}}]


async def test_an_idle_connection_is_closed_but_a_stream_it_serves_stays(
        host: FakeHost) -> None:
    """A connection that never completes a request head is closed after
    ``idle_connection_timeout`` (aiohttp's own default is an hour); one serving a GET
    stream is serving a request, and outlives it: here three keep-alive comments, three
    times the timeout."""
    async with (
        serve_front(StreamableHttpTransport(), host, idle_connection_timeout=0.1,
                    keepalive_interval=0.1) as url,
        aiohttp.ClientSession() as http,
    ):
        reader, writer, head = await _raw(url)
        with anyio.fail_after(EVENT_TIMEOUT):
            try:
                writer.write(head)  # and never the blank line that ends it
                assert await reader.read() == b""  # closed, unanswered
            finally:
                writer.close()
        await _keep_alives(Client(http, url), 3)


async def _keep_alives(client: Client, count: int) -> None:
    """Open a session and its GET stream, and read it until ``count`` keep-alive comments
    have come (the stream must not end before)."""
    await client.initialize()
    stream = await client.http.get(client.url, headers=client.headers("text/event-stream"))
    seen = b""
    with anyio.fail_after(EVENT_TIMEOUT):
        while seen.count(b": keep-alive\n\n") < count:
            chunk = await stream.content.readany()
            assert chunk, "the stream ended"
            seen += chunk
    stream.close()


async def test_an_idle_stream_gets_keep_alive_comments(host: FakeHost) -> None:
    async with (
        serve_front(StreamableHttpTransport(), host, keepalive_interval=0.05) as url,
        aiohttp.ClientSession() as http,
    ):
        await _keep_alives(Client(http, url), 2)
