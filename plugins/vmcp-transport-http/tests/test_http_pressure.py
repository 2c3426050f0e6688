"""The Streamable HTTP front under pressure, in process, over real sockets, raw HTTP clients.

Reply retention bounded and returned, sessions reclaimed at the caps, per-principal caps, the
per-principal rate limit and admission control, each refusal with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from http_harness import FakeHost, serve_front
from test_http_front import INITIALIZE, Client, data, events, message
from vmcp_transport_http.limits import RateLimiter
from vmcp_transport_http.session import HttpSession
from vmcp_transport_http.settings import DEFAULT_RATE_LIMIT, StreamableSettings
from vmcp_transport_http.streamable import StreamableHttpTransport
from vmcp_transport_http.streamable_server import StreamableHttpServer

pytestmark = pytest.mark.anyio

BIG = "x" * (100 << 10)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def peer(host: FakeHost, index: int) -> HttpSession:
    session = host.sessions[index].peer
    assert isinstance(session, HttpSession)
    return session


async def test_delivered_replies_are_not_retained(http: aiohttp.ClientSession) -> None:
    host = FakeHost()
    async with serve_front(StreamableHttpTransport(), host) as url:
        clients = [Client(http, url) for _ in range(50)]
        await asyncio.gather(*(client.initialize() for client in clients))

        async def call(client: Client) -> str | None:
            found = await events(await client.post(message("chatty", 1, text=BIG)))
            assert data(found)[-1]["result"] == {"sent": 1}
            return found[0].id  # the priming event names the stream

        primed = await asyncio.gather(*(call(client) for client in clients))
        json_reply = await clients[0].post(message("echo", 2, text=BIG), "application/json")
        assert (await json_reply.json())["result"]["text"] == BIG
        quick = await clients[1].post(message("echo", 3, text=BIG))  # one JSON body
        assert (await quick.json())["result"]["text"] == BIG
        for index, event_id in enumerate(primed):
            assert event_id is not None
            assert peer(host, index).retained_bytes == 0
            assert peer(host, index).find_stream(event_id) is None  # nothing kept to replay


async def test_undelivered_replies_are_bounded_in_bytes_and_freed_by_delete(
    http: aiohttp.ClientSession,
) -> None:
    host = FakeHost()
    async with serve_front(StreamableHttpTransport(), host, retained_bytes=150_000) as url:
        client = Client(http, url)
        await client.initialize()
        primed = []
        for request_id in (1, 2):
            held = await client.post(message("hold", request_id, text=BIG))
            primed.append((await events(held, 1))[0].id)
            held.close()  # the connection breaks before the reply
        assert (await client.post(message("release", 3))).status == 200
        session = peer(host, 0)
        # both replies wait for a resume, but only the newest fits in 150 kB
        assert 0 < session.retained_bytes <= 150_000
        assert session.find_stream(primed[1] or "") is not None
        assert session.find_stream(primed[0] or "") is None
        assert (await http.delete(url, headers=client.headers())).status == 200
        assert session.retained_bytes == 0
        assert session.find_stream(primed[1] or "") is None


async def test_the_get_streams_replay_is_bounded_in_bytes(http: aiohttp.ClientSession) -> None:
    host = FakeHost()
    async with serve_front(StreamableHttpTransport(), host, replay_bytes=250_000) as url:
        client = Client(http, url)
        await client.initialize()
        session = peer(host, 0)
        for n in range(5):  # ~100 KiB each, for a GET stream nobody reads yet
            session.send({"jsonrpc": "2.0", "method": "notifications/message",
                          "params": {"n": n, "data": BIG}})
        assert session.get_stream.buffered_bytes <= 250_000
        headers = client.headers("text/event-stream", **{"Last-Event-ID": "0-0"})
        replay = await http.get(url, headers=headers)
        found = await events(replay, 2)
        assert [json.loads(event.data)["params"]["n"] for event in found] == [3, 4]
        replay.close()


async def test_each_principal_has_its_own_session_cap(http: aiohttp.ClientSession) -> None:
    host = FakeHost("alice", "bob")
    async with serve_front(
        StreamableHttpTransport(), host, max_sessions_per_principal=1, reclaim_after=0
    ) as url:
        alice = Client(http, url)
        response = await alice.post(INITIALIZE, Authorization="Bearer alice")
        alice.session_id = response.headers["Mcp-Session-Id"]
        held = await alice.post(message("hold", 1), Authorization="Bearer alice")
        await events(held, 1)
        refused = await Client(http, url).post(INITIALIZE, Authorization="Bearer alice")
        assert refused.status == 429 and refused.headers["Retry-After"] == "1"
        assert (await Client(http, url).post(INITIALIZE, Authorization="Bearer bob")).status == 200
        await alice.post(message("release", 2), Authorization="Bearer alice")
        await events(held)
        # alice's session rests now: her new one takes its place
        again = await Client(http, url).post(INITIALIZE, Authorization="Bearer alice")
        assert again.status == 200
        assert (await alice.post(message("echo", 3), Authorization="Bearer alice")).status == 404


async def test_a_principal_beyond_its_rate_gets_429_on_every_session(
    http: aiohttp.ClientSession,
) -> None:
    host = FakeHost("alice", "bob")
    async with serve_front(
        StreamableHttpTransport(), host, rate_limit=0.5, rate_burst=3
    ) as url:
        alice = {"Authorization": "Bearer alice"}
        first, second = Client(http, url), Client(http, url)
        for client in (first, second):  # every POST counts, initialize too
            response = await client.post(INITIALIZE, **alice)
            client.session_id = response.headers["Mcp-Session-Id"]
        assert (await first.post(message("echo", 1), **alice)).status == 200
        # a new session gives no new allowance: the limit is the caller's
        refused = await second.post(message("echo", 2), **alice)
        assert refused.status == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert (await refused.json())["id"] == 2
        bob = await Client(http, url).post(INITIALIZE, Authorization="Bearer bob")
        assert bob.status == 200


def test_the_rate_limit_is_on_by_default_where_callers_are_authenticated() -> None:
    def limit(host: FakeHost, **settings: float) -> float | None:
        return StreamableHttpServer(host, StreamableSettings(**settings)).rate_limit

    assert limit(FakeHost("alice")) == DEFAULT_RATE_LIMIT
    assert limit(FakeHost()) is None  # no auth: every caller is this machine's user
    assert limit(FakeHost("alice"), rate_limit=0) is None
    assert limit(FakeHost(), rate_limit=5) == 5


def test_buckets_of_callers_gone_quiet_are_forgotten() -> None:
    limiter = RateLimiter(1_000_000.0, 1)  # refilled within a microsecond
    for caller in range(100):
        assert limiter.take(caller) == 0.0
    assert len(limiter) < 100


async def test_requests_beyond_the_admission_queue_are_refused_at_once(
    http: aiohttp.ClientSession,
) -> None:
    host = FakeHost()
    async with serve_front(StreamableHttpTransport(), host, max_concurrent_requests=1,
                           max_queued_requests=0) as url:
        client = Client(http, url)
        await client.initialize()
        held = await client.post(message("hold", 1))
        await events(held, 1)
        refused = await client.post(message("echo", 2))
        assert refused.status == 503 and refused.headers["Retry-After"] == "1"
        assert (await refused.json())["id"] == 2
        assert (await Client(http, url).post(INITIALIZE)).status == 503
        # room comes back once what was in flight ends (DELETE is not a POST: it is admitted)
        assert (await http.delete(url, headers=client.headers())).status == 200
        await events(held)
        assert (await Client(http, url).post(INITIALIZE)).status == 200


async def test_a_request_waits_its_turn_for_at_most_the_queue_timeout(
    http: aiohttp.ClientSession,
) -> None:
    host = FakeHost()
    async with serve_front(StreamableHttpTransport(), host, max_concurrent_requests=1,
                           queue_timeout=0.2) as url:
        client, other = Client(http, url), Client(http, url)
        await client.initialize()
        await other.initialize()
        held = await client.post(message("hold", 1))
        await events(held, 1)
        started = asyncio.get_running_loop().time()
        refused = await other.post(message("echo", 2))
        assert asyncio.get_running_loop().time() - started >= 0.2
        assert refused.status == 503 and refused.headers["Retry-After"] == "1"
        assert (await refused.json())["id"] == 2
        assert all(m.get("id") != 2 for m in host.sessions[1].received)  # never admitted
        waiting = asyncio.ensure_future(other.post(message("echo", 3)))
        assert (await http.delete(url, headers=client.headers())).status == 200
        await events(held)
        answer = await waiting  # admitted once the held request ended
        assert data(await events(answer)) == [{"jsonrpc": "2.0", "id": 3, "result": {}}]


@contextlib.asynccontextmanager
async def serve_server(server: StreamableHttpServer) -> AsyncIterator[str]:
    """Serve ``server``'s front on a free loopback port (the test keeps the server
    object, to see its admission queue); yield the endpoint's URL."""
    runner = web.ServerRunner(server.app().server(server.settings.send_timeout))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}{server.settings.path}"
    finally:
        await server.stop()
        await runner.cleanup()


async def test_a_new_session_is_refused_at_once_behind_a_queue_others_wait_in(
    http: aiohttp.ClientSession,
) -> None:
    host = FakeHost()
    server = StreamableHttpServer(host, StreamableSettings(
        port=0, max_concurrent_requests=1, queue_timeout=30.0))
    async with serve_server(server) as url:
        client = Client(http, url)
        await client.initialize()
        admission = server.admission  # this test's own turn and waiter fill it
        assert await admission.enter()
        ahead = asyncio.ensure_future(admission.enter())
        await asyncio.sleep(0)  # one loop turn: it waits
        refused = await Client(http, url).post(INITIALIZE)  # behind 1 = the turns: no wait
        assert refused.status == 503 and refused.headers["Retry-After"] == "1"
        assert (await refused.json())["id"] == INITIALIZE["id"]
        again = await Client(http, url).post(INITIALIZE)  # told to come back a bit later
        assert again.status == 503 and again.headers["Retry-After"] == "2"
        assert len(host.sessions) == 1  # neither opened a session
        call = asyncio.ensure_future(client.post(message("echo", 2)))  # a call still waits
        admission.leave()
        assert await ahead
        admission.leave()  # its turn goes to the call
        answer = await call
        assert data(await events(answer)) == [{"jsonrpc": "2.0", "id": 2, "result": {}}]


async def test_a_session_between_two_calls_is_not_reclaimed(http: aiohttp.ClientSession) -> None:
    host = FakeHost()
    async with serve_front(
        StreamableHttpTransport(), host, max_sessions=1, reclaim_after=60
    ) as url:
        first = Client(http, url)
        await first.initialize()
        refused = await Client(http, url).post(INITIALIZE)
        assert refused.status == 503 and refused.headers["Retry-After"] == "1"
        assert (await first.post(message("echo", 1))).status == 200
