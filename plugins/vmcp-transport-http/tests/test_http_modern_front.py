"""The Streamable HTTP front serving 2026-07-28 requests, in process, against a scripted fake
gateway, over real sockets: one POST per request, no session, the header rules and statuses."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import anyio
import pytest
from http_harness import EVENT_TIMEOUT, FakeHost, serve_front
from vmcp_transport_http.sse import iter_events
from vmcp_transport_http.streamable import StreamableHttpTransport

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
BOTH = "application/json, text/event-stream"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
}
NAMED = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
#: a tool whose schema mirrors three arguments into headers, one of them nested
REGION_TOOL = {
    "name": "sql",
    "inputSchema": {
        "type": "object",
        "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "limit": {"type": "integer", "x-mcp-header": "Limit"},
            "scope": {"type": "object", "properties": {
                "tenant": {"type": "string", "x-mcp-header": "Tenant"}}},
            "query": {"type": "string"},
        },
    },
}


def request(method: str, request_id: Any = 1, meta: dict[str, Any] | None = None,
            **params: Any) -> dict[str, Any]:
    """A modern request with the envelope in its ``_meta``."""
    return {"jsonrpc": "2.0", "id": request_id, "method": method,
            "params": {**params, "_meta": META if meta is None else meta}}


def headers_for(body: dict[str, Any], **extra: str) -> dict[str, str]:
    """The headers a conforming client sends with ``body``."""
    headers = {"Accept": BOTH, "MCP-Protocol-Version": MODERN, "Mcp-Method": body["method"]}
    member = NAMED.get(body["method"])
    if member is not None:
        headers["Mcp-Name"] = body["params"][member]
    return {**headers, **extra}


def b64(value: str) -> str:
    return "=?base64?" + base64.b64encode(value.encode()).decode() + "?="


class Modern:
    """Raw modern POSTs to one front."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url

    async def post(self, body: Any, headers: dict[str, str] | None = None,
                   drop: tuple[str, ...] = (), **extra: str) -> aiohttp.ClientResponse:
        sent = headers_for(body, **extra) if headers is None else headers
        for name in drop:
            sent.pop(name)
        return await self.http.post(self.url, json=body, headers=sent)

    async def refused(self, body: Any, status: int = 400, **kwargs: Any) -> dict[str, Any]:
        """POST ``body``; assert it is refused with ``status`` and a JSON-RPC error naming
        it; return the error."""
        response = await self.post(body, **kwargs)
        assert response.status == status, await response.text()
        assert response.content_type == "application/json"
        reply = await response.json()
        assert reply["id"] == body.get("id")
        return reply["error"]  # type: ignore[no-any-return]


@pytest.fixture
async def host() -> FakeHost:
    return FakeHost()


@pytest.fixture
async def modern(host: FakeHost) -> AsyncIterator[Modern]:
    async with (
        serve_front(StreamableHttpTransport(), host, keepalive_interval=0.2) as url,
        aiohttp.ClientSession() as http,
    ):
        yield Modern(http, url)


async def wait_closed(host: FakeHost) -> None:
    """Wait until every session the front opened is closed."""
    with anyio.fail_after(EVENT_TIMEOUT):
        for session in host.sessions:
            await session.closed.wait()


async def test_a_request_is_served_without_a_session(modern: Modern, host: FakeHost) -> None:
    body = request("tools/call", 5, name="echo", arguments={"x": 1})
    response = await modern.post(body)
    assert response.status == 200
    assert response.content_type == "application/json"
    assert "Mcp-Session-Id" not in response.headers
    reply = await response.json()
    assert reply == {"jsonrpc": "2.0", "id": 5, "result": body["params"]}
    # one session for the one request, closed once the response went out
    assert len(host.sessions) == 1
    await wait_closed(host)
    assert host.closed == host.sessions


async def test_a_session_id_is_ignored_and_none_is_minted(modern: Modern) -> None:
    response = await modern.post(request("echo"), **{"Mcp-Session-Id": "left-over",
                                                       "Last-Event-ID": "1-1"})
    assert response.status == 200
    assert "Mcp-Session-Id" not in response.headers
    assert (await response.json())["id"] == 1


async def test_a_batch_is_refused(modern: Modern) -> None:
    batch = [request("echo", 1), request("echo", 2)]
    response = await modern.post(batch, headers={"Accept": BOTH, "MCP-Protocol-Version": MODERN,
                                                 "Mcp-Method": "echo"})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == -32600


async def test_the_version_header_must_equal_the_body_version(modern: Modern) -> None:
    body = request("echo")
    error = await modern.refused(body, **{"MCP-Protocol-Version": "2025-11-25"})
    assert error["code"] == -32020 and "MCP-Protocol-Version" in error["message"]
    error = await modern.refused(body, drop=("MCP-Protocol-Version",))
    assert error["code"] == -32020


async def test_mcp_method_is_required_and_must_equal_the_method(modern: Modern) -> None:
    body = request("echo")
    assert (await modern.refused(body, drop=("Mcp-Method",)))["code"] == -32020
    error = await modern.refused(body, **{"Mcp-Method": "tools/list"})
    assert error["code"] == -32020 and "Mcp-Method" in error["message"]


@pytest.mark.parametrize(("method", "params"), [
    ("tools/call", {"name": "echo", "arguments": {}}),
    ("prompts/get", {"name": "greet"}),
    ("resources/read", {"uri": "file:///a.txt"}),
])
async def test_mcp_name_is_required_and_must_match(
        modern: Modern, method: str, params: dict[str, Any]) -> None:
    body = request(method, **params)
    assert (await modern.refused(body, drop=("Mcp-Name",)))["code"] == -32020
    error = await modern.refused(body, **{"Mcp-Name": "other"})
    assert error["code"] == -32020 and "Mcp-Name" in error["message"]


async def test_mcp_name_in_base64_is_decoded_and_a_second_copy_refused(modern: Modern) -> None:
    body = request("tools/call", name="écho", arguments={})
    ok = await modern.post(body, **{"Mcp-Name": b64("écho")})
    assert ok.status == 200
    assert (await modern.refused(body, **{"Mcp-Name": "=?base64?not base64?="}))["code"] == -32020
    twice = headers_for(request("tools/call", name="echo", arguments={}))
    raw = [*twice.items(), ("Mcp-Name", "echo")]
    response = await modern.http.post(modern.url, json=request("tools/call", name="echo",
                                                               arguments={}), headers=raw)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == -32020


async def test_an_unsupported_version_gets_32022_with_the_supported_list(modern: Modern) -> None:
    meta = {**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}
    body = request("echo", meta=meta)
    error = await modern.refused(body, **{"MCP-Protocol-Version": "2099-01-01"})
    assert error["code"] == -32022
    assert MODERN in error["data"]["supported"] and error["data"]["requested"] == "2099-01-01"


async def test_a_request_id_or_method_of_the_wrong_type_gets_400_at_once(
        modern: Modern, host: FakeHost) -> None:
    for request_id in (1.5, True, [1], {"n": 1}):
        body = request("echo", request_id)
        response = await modern.post(body)
        assert response.status == 400, await response.text()
        reply = await response.json()
        assert reply["id"] is None and reply["error"]["code"] == -32600
    body = {**request("echo", 7), "method": 5}
    response = await modern.post(body, headers=headers_for(request("echo", 7)))
    assert response.status == 400
    assert (await response.json()) == {"jsonrpc": "2.0", "id": 7, "error": {
        "code": -32600, "message": "Invalid request: the method must be a string and the id a "
        "string or an integer"}}
    assert host.sessions == []  # nothing reached the gateway


async def test_missing_envelope_fields_get_400(modern: Modern) -> None:
    no_caps = {"io.modelcontextprotocol/protocolVersion": MODERN}
    error = await modern.refused(request("echo", meta=no_caps))
    assert error["code"] == -32602 and "clientCapabilities" in error["message"]
    # modern by its header alone: the body must still carry the envelope
    bare = {"jsonrpc": "2.0", "id": 3, "method": "echo"}
    assert (await modern.refused(bare, headers=headers_for(bare)))["code"] == -32602


async def test_an_unknown_method_gets_404_with_a_json_rpc_body(modern: Modern) -> None:
    assert (await modern.refused(request("no/such"), 404))["code"] == -32601


@pytest.mark.parametrize(("code", "status"), [(-32602, 400), (-32021, 400), (-32022, 400),
                                              (-32603, 200)])
async def test_gateway_errors_get_their_http_status(modern: Modern, code: int, status: int
                                                    ) -> None:
    assert (await modern.refused(request("fail", code=code), status))["code"] == code


async def test_a_request_the_gateway_sheds_gets_503_with_retry_after(modern: Modern) -> None:
    body = request("fail", code=-32000, data={"retryAfter": 7})
    response = await modern.post(body)
    assert response.status == 503 and response.headers["Retry-After"] == "7"


async def test_a_notification_gets_202_and_reaches_no_session(
        modern: Modern, host: FakeHost) -> None:
    note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
    response = await modern.post(note, headers={"Accept": BOTH, "MCP-Protocol-Version": MODERN,
                                                "Mcp-Method": note["method"]})
    assert response.status == 202
    assert host.sessions == []
    # one of an unknown version (modern by its _meta) is told what vmcp speaks
    meta = {"io.modelcontextprotocol/protocolVersion": "2099-01-01"}
    unknown = {"jsonrpc": "2.0", "method": "notifications/x", "params": {"_meta": meta}}
    assert (await modern.refused(unknown, headers={"Accept": BOTH}))["code"] == -32022


async def test_get_and_delete_get_405_for_a_modern_client(modern: Modern) -> None:
    for verb in ("GET", "DELETE"):
        response = await modern.http.request(
            verb, modern.url, headers={"Accept": "text/event-stream",
                                       "MCP-Protocol-Version": MODERN})
        assert response.status == 405 and response.headers["Allow"] == "POST"
    # a handshake-era client without a session gets what it always got
    legacy = await modern.http.get(modern.url, headers={"Accept": "text/event-stream",
                                                        "MCP-Protocol-Version": "2025-11-25"})
    assert legacy.status == 400


async def test_a_stream_carries_only_its_request_notifications_then_the_response(
        modern: Modern) -> None:
    response = await modern.post(request("chatty", 9, count=3))
    assert response.status == 200 and response.content_type == "text/event-stream"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert "Mcp-Session-Id" not in response.headers
    with anyio.fail_after(EVENT_TIMEOUT):
        found = [e async for e in iter_events(response.content.iter_any(), 1 << 20)]
    assert all(event.id is None for event in found)  # nothing to resume in this era
    messages = [json.loads(event.data) for event in found]
    assert [m.get("params", {}).get("n") for m in messages[:3]] == [0, 1, 2]
    assert messages[3] == {"jsonrpc": "2.0", "id": 9, "result": {"sent": 3}}
    assert len(messages) == 4
    unrelated = await modern.post(request("unsolicited", 10))
    assert (await unrelated.json()) == {"jsonrpc": "2.0", "id": 10, "result": {}}


async def test_a_server_to_client_request_is_never_sent(modern: Modern, host: FakeHost) -> None:
    response = await modern.post(request("ask", 4))
    assert (await response.json()) == {"jsonrpc": "2.0", "id": 4, "result": {"answer": None}}
    refusal = host.sessions[0].received[-1]
    assert refusal["id"] == "ask-4" and refusal["error"]["code"] == -32601


async def test_a_json_only_client_gets_the_response_alone(modern: Modern) -> None:
    body = request("chatty", 2, count=2)
    response = await modern.post(body, **{"Accept": "application/json"})
    assert response.content_type == "application/json"
    assert (await response.json())["result"] == {"sent": 2}


async def test_a_long_stream_gets_keep_alives_and_closing_it_cancels(
        modern: Modern, host: FakeHost) -> None:
    response = await modern.post(request("hold", 1))
    assert response.content_type == "text/event-stream"
    with anyio.fail_after(EVENT_TIMEOUT):
        assert (await response.content.readuntil(b"\n\n")) == b": keep-alive\n\n"
    assert host.closed == []
    response.close()  # in this era, closing the stream is the cancellation
    await wait_closed(host)


# -- Mcp-Param-* ---------------------------------------------------------------------------

PARAMS = {"Mcp-Param-Region": "us-west1", "Mcp-Param-Limit": "42", "Mcp-Param-Tenant": "acme"}
ARGUMENTS = {"region": "us-west1", "limit": 42, "scope": {"tenant": "acme"}, "query": "q"}


async def test_param_headers_that_match_the_arguments_pass(modern: Modern, host: FakeHost) -> None:
    host.tools = [{"name": "other", "inputSchema": {"type": "object"}}, REGION_TOOL]
    body = request("tools/call", name="sql", arguments=ARGUMENTS)
    assert (await modern.post(body, **PARAMS)).status == 200
    # integers compare as numbers, and Base64 values are decoded
    alike = {**PARAMS, "Mcp-Param-Limit": "42.0", "Mcp-Param-Region": b64("us-west1")}
    assert (await modern.post(body, **alike)).status == 200
    # a null or absent argument has no header
    sparse = request("tools/call", name="sql", arguments={"region": "eu", "limit": None})
    assert (await modern.post(sparse, **{"Mcp-Param-Region": "eu"})).status == 200


@pytest.mark.parametrize("headers", [
    {"Mcp-Param-Region": "us-west1", "Mcp-Param-Limit": "42"},  # one missing
    {**PARAMS, "Mcp-Param-Region": "eu-north1"},  # one differs
    {**PARAMS, "Mcp-Param-Limit": "42.5"},
    {**PARAMS, "Mcp-Param-Tenant": "=?base64?!!?="},  # malformed Base64
])
async def test_param_headers_that_disagree_are_refused(
        modern: Modern, host: FakeHost, headers: dict[str, str]) -> None:
    host.tools = [REGION_TOOL]
    body = request("tools/call", name="sql", arguments=ARGUMENTS)
    error = await modern.refused(body, **headers)
    assert error["code"] == -32020 and "Mcp-Param-" in error["message"]


async def test_a_param_header_without_its_argument_is_refused(
        modern: Modern, host: FakeHost) -> None:
    host.tools = [REGION_TOOL]
    body = request("tools/call", name="sql", arguments={"query": "q"})
    error = await modern.refused(body, **{"Mcp-Param-Region": "us-west1"})
    assert error["code"] == -32020


async def test_param_headers_are_looked_up_through_every_page(
        modern: Modern, host: FakeHost) -> None:
    pages = iter([{"tools": [{"name": "a"}], "nextCursor": "p2"}, {"tools": [REGION_TOOL]}])
    host.tools = []
    original = host.open_session

    def paged(peer: Any, principal: Any = None) -> Any:
        session = original(peer, principal)
        handle = session.handle

        def handle_paged(message: dict[str, Any]) -> None:
            if message.get("method") == "tools/list":
                session.received.append(message)
                peer.send({"jsonrpc": "2.0", "id": message["id"], "result": next(pages)})
                return
            handle(message)

        session.handle = handle_paged  # type: ignore[method-assign]
        return session

    host.open_session = paged  # type: ignore[method-assign]
    body = request("tools/call", name="sql", arguments={"region": "x"})
    assert (await modern.refused(body))["code"] == -32020
    lists = [m for m in host.sessions[0].received if m.get("method") == "tools/list"]
    assert [m["params"].get("cursor") for m in lists] == [None, "p2"]
    assert lists[0]["params"]["_meta"] == META  # the caller's own envelope, so its own view


async def test_an_unlisted_tool_or_a_bad_annotation_checks_nothing(
        modern: Modern, host: FakeHost) -> None:
    body = request("tools/call", name="sql", arguments={"region": "x"})
    assert (await modern.post(body)).status == 200  # not listed: the gateway decides
    bad = {"name": "sql", "inputSchema": {"type": "object", "properties": {
        "region": {"type": "number", "x-mcp-header": "Region"}}}}
    host.tools = [bad]
    assert (await modern.post(body)).status == 200


def lists_asked(host: FakeHost) -> int:
    return sum(m.get("method") == "tools/list" for s in host.sessions for m in s.received)


async def test_what_a_tool_mirrors_is_kept_as_long_as_the_list_says(
        modern: Modern, host: FakeHost) -> None:
    host.tools = [REGION_TOOL]
    body = request("tools/call", name="sql", arguments=ARGUMENTS)
    assert (await modern.post(body, **PARAMS)).status == 200
    assert (await modern.post(body, **PARAMS)).status == 200
    assert lists_asked(host) == 2  # no ttlMs: asked every time
    host.list_lifetime = {"ttlMs": 60_000, "cacheScope": "public"}
    for _ in range(3):
        assert (await modern.post(body, **PARAMS)).status == 200
    assert lists_asked(host) == 3
    # kept: a refusal by the kept schema needs no new list either
    assert (await modern.refused(body))["code"] == -32020
    assert lists_asked(host) == 3


async def test_a_private_list_is_kept_per_caller() -> None:
    host = FakeHost("alice", "bob")
    host.tools = [REGION_TOOL]
    host.list_lifetime = {"ttlMs": 60_000, "cacheScope": "private"}
    body = request("tools/call", name="sql", arguments=ARGUMENTS)
    async with (
        serve_front(StreamableHttpTransport(), host) as url,
        aiohttp.ClientSession() as http,
    ):
        modern = Modern(http, url)
        for caller in ("alice", "alice", "bob", "bob"):
            reply = await modern.post(body, **PARAMS, Authorization=f"Bearer {caller}")
            assert reply.status == 200
    assert lists_asked(host) == 2  # once for each caller


async def test_a_browser_may_send_the_modern_headers(modern: Modern) -> None:
    page = "http://" + urlsplit(modern.url).netloc  # the front's own origin
    preflight = await modern.http.options(modern.url, headers={
        "Origin": page, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "mcp-protocol-version, mcp-method, mcp-name, "
                                          "mcp-param-region, mcp-param-a/b, mcp-param-(x)"})
    assert preflight.status == 204
    allowed = {name.strip().lower()
               for name in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"mcp-protocol-version", "mcp-method", "mcp-name", "mcp-param-region"} <= allowed
    # what no header could be called is not echoed
    assert not allowed & {"mcp-param-a/b", "mcp-param-(x)"}


async def test_an_open_listen_holds_no_place_among_the_posts_being_handled(
        host: FakeHost) -> None:
    async with (
        serve_front(StreamableHttpTransport(), host, max_concurrent_requests=1) as url,
        aiohttp.ClientSession() as http,
    ):
        modern = Modern(http, url)
        body = request("subscriptions/listen", 1, notifications={})
        # a listen is a stream: a client that takes only JSON cannot have one
        assert (await modern.post(body, Accept="application/json")).status == 406
        listen = await modern.post(body)
        assert listen.content_type == "text/event-stream"
        with anyio.fail_after(EVENT_TIMEOUT):
            async for event in iter_events(listen.content.iter_any(), 1 << 20):
                assert "acknowledged" in event.data
                break
        assert (await modern.post(request("echo", 2))).status == 200
        held = await modern.post(request("hold", 3))  # a call in flight does hold one
        assert held.content_type == "text/event-stream"
        assert (await modern.post(request("echo", 4))).status == 503
        listen.close()
        held.close()
