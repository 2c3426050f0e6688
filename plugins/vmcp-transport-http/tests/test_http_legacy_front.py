"""The legacy HTTP+SSE front, in process, against a scripted fake gateway."""

from __future__ import annotations

import aiohttp
import anyio
import pytest
from http_harness import EVENT_TIMEOUT, FakeHost, serve_front
from mcp import ClientSession
from mcp.client.sse import sse_client
from vmcp_transport_http.legacy_sse import LegacySseTransport
from vmcp_transport_http.settings import LegacySseSettings, StreamableSettings
from vmcp_transport_http.sse import iter_events

pytestmark = pytest.mark.anyio


def test_default_port_is_apart_from_the_http_and_ws_fronts() -> None:
    assert LegacySseSettings().port == 3002
    assert StreamableSettings().port == 3000  # and ws defaults to 3001


async def test_the_sdk_legacy_client_works_against_the_front() -> None:
    host = FakeHost()
    async with serve_front(LegacySseTransport(), host) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/sse")
        async with sse_client(url) as (read, write), ClientSession(read, write) as session:
            with anyio.fail_after(EVENT_TIMEOUT):
                result = await session.initialize()
            assert result.server_info.name == "fake"
        with anyio.fail_after(EVENT_TIMEOUT):
            await host.sessions[0].closed.wait()  # the stream closed: the session ended
    assert [m.get("method") for m in host.sessions[0].received] == [
        "initialize",
        "notifications/initialized",
    ]


async def test_endpoint_event_and_message_errors() -> None:
    host = FakeHost()
    async with (
        serve_front(LegacySseTransport(), host) as url,
        aiohttp.ClientSession() as http,
    ):
        base = url.removesuffix("/sse")
        assert (await http.get(url, headers={"Origin": "http://evil.example"})).status == 403
        stream = await http.get(url, headers={"Accept": "text/event-stream"})
        with anyio.fail_after(EVENT_TIMEOUT):
            event = await anext(aiter(iter_events(stream.content.iter_any(), 1 << 20)))
        assert event.event == "endpoint" and event.data.startswith("/messages?session_id=")
        endpoint = base + event.data
        ping = {"jsonrpc": "2.0", "id": 1, "method": "echo"}
        assert (await http.post(endpoint, json=ping)).status == 202
        assert (await http.post(base + "/messages", json=ping)).status == 400
        assert (await http.post(base + "/messages?session_id=nope", json=ping)).status == 404
        bad = await http.post(endpoint, data=b"{", headers={"Content-Type": "application/json"})
        assert bad.status == 400
        stream.close()
        with anyio.fail_after(EVENT_TIMEOUT):
            await host.sessions[0].closed.wait()
        assert (await http.post(endpoint, json=ping)).status == 404
