"""End to end: ``vmcp start`` serving HTTP to the official SDK clients, and mounting HTTP servers.

Each test writes its own ``vmcp.toml`` with ``port = 0`` and reads the real URL from the
gateway's ``vmcp: serving <name> on <url>`` line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import httpx2
import mcp.types as types
import pytest
from http_harness import (
    EVENT_TIMEOUT,
    fixture_backend,
    run_gateway,
    run_to_exit,
    start_fixture_backend,
    stdio_fixture,
    stop_process,
    write_config,
)
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

pytestmark = [
    pytest.mark.anyio,
    # logging/setLevel and sampling are deprecated in 2026-07-28, and still what vmcp relays
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

BOTH = "application/json, text/event-stream"


class Recorder:
    """Client callbacks that answer sampling and record logs."""

    def __init__(self, reply: str = "hi") -> None:
        self.reply = reply
        self.logs: list[Any] = []
        self.prompts: list[str] = []

    async def sampling(
        self, context: Any, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        content = params.messages[0].content
        self.prompts.append(content.text if isinstance(content, types.TextContent) else "")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=self.reply), model="m"
        )

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params.data)


class Notes:
    """A ``message_handler`` that records the method of every notification; tests await one."""

    def __init__(self) -> None:
        self.methods: list[str] = []
        self._changed = anyio.Event()

    async def __call__(self, message: Any) -> None:
        self.methods.append(getattr(message, "method", type(message).__name__))
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def wait_for(self, method: str, count: int = 1, timeout: float = EVENT_TIMEOUT) -> None:
        """Wait until ``method`` was received ``count`` times."""
        with anyio.fail_after(timeout):
            while self.methods.count(method) < count:
                await self._changed.wait()


def http_client(**headers: str) -> httpx2.AsyncClient:
    """An HTTP client for SDK sessions (one may serve many: it has no connection cap)."""
    return httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(30, read=60),
        limits=httpx2.Limits(max_connections=None, max_keepalive_connections=None),
    )


@asynccontextmanager
async def http_session(
    url: str,
    recorder: Recorder | None = None,
    http: httpx2.AsyncClient | None = None,
    message_handler: Notes | None = None,
    **headers: str,
) -> AsyncIterator[ClientSession]:
    """An initialized SDK ``ClientSession`` over Streamable HTTP."""
    recorder = recorder or Recorder()
    async with AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(http_client(**headers))
        read, write = await stack.enter_async_context(streamable_http_client(url, http_client=http))
        session = await stack.enter_async_context(
            ClientSession(
                read,
                write,
                sampling_callback=recorder.sampling,
                logging_callback=recorder.logging,
                message_handler=message_handler,
            )
        )
        with anyio.fail_after(EVENT_TIMEOUT * 3):
            await session.initialize()
        yield session


def text_of(result: types.CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


def gateway_config(tmp_path: Path, servers: dict[str, Any], **tables: Any) -> Path:
    transports = tables.pop("transports", {"http": {"port": 0}})
    config: dict[str, Any] = {f"transports.{n}": s for n, s in transports.items()}
    config.update({f"servers.{n}": s for n, s in servers.items()})
    config.update(tables)
    return write_config(tmp_path / "vmcp.toml", config)


async def test_the_sdk_client_uses_the_gateway_over_http(tmp_path: Path) -> None:
    config = gateway_config(tmp_path, {"fx": stdio_fixture()})
    async with run_gateway(config, "http") as gateway:
        assert gateway.url.startswith("http://127.0.0.1:") and gateway.url.endswith("/mcp")
        recorder = Recorder()
        async with http_session(gateway.url, recorder) as session:
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert {"fx__echo", "fx__slow", "fx__sample"} <= names
            assert text_of(await session.call_tool("fx__echo", {"text": "a"})) == "echo: a"

            await session.set_logging_level("info")
            progress: list[float] = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append(value)

            with anyio.fail_after(EVENT_TIMEOUT):
                result = await session.call_tool(
                    "fx__slow", {"steps": 3}, progress_callback=on_progress
                )
            assert text_of(result) == "done 3"
            assert progress == [1, 2, 3]
            assert recorder.logs == ["did step 1", "did step 2", "did step 3"]

            with anyio.fail_after(EVENT_TIMEOUT):
                sampled = await session.call_tool("fx__sample", {"prompt": "hello"})
            assert text_of(sampled) == "sampled: hi"
            assert recorder.prompts == ["hello"]


async def test_two_clients_with_colliding_ids_get_their_own_replies(tmp_path: Path) -> None:
    config = gateway_config(tmp_path, {"fx": stdio_fixture()})
    async with (
        run_gateway(config, "http") as gateway,
        http_session(gateway.url) as first,
        http_session(gateway.url) as second,
    ):
        replies: dict[str, str] = {}

        async def ask(session: ClientSession, text: str) -> None:
            replies[text] = text_of(await session.call_tool("fx__echo", {"text": text}))

        with anyio.fail_after(EVENT_TIMEOUT * 2):
            async with anyio.create_task_group() as tg:
                for n in range(10):  # both sessions number their requests 0, 1, 2...
                    tg.start_soon(ask, first, f"first-{n}")
                    tg.start_soon(ask, second, f"second-{n}")
        assert replies == {text: f"echo: {text}" for text in replies}
        assert len(replies) == 20


async def test_two_hundred_concurrent_sessions_do_not_cross(tmp_path: Path) -> None:
    config = gateway_config(tmp_path, {"fx": stdio_fixture()})
    async with run_gateway(config, "http") as gateway, http_client() as http:
        replies: dict[int, str] = {}

        async def client(n: int) -> None:
            async with http_session(gateway.url, http=http) as session:
                replies[n] = text_of(await session.call_tool("fx__echo", {"text": f"c{n}"}))

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for n in range(200):
                    tg.start_soon(client, n)
        assert replies == {n: f"echo: c{n}" for n in range(200)}


async def test_http_rules_at_the_gateway(tmp_path: Path) -> None:
    http = {"port": 0, "max_message_bytes": 4096, "session_idle_timeout": 3}
    config = gateway_config(tmp_path, {"fx": stdio_fixture()}, transports={"http": http})
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t"},
        },
    }
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    async with run_gateway(config, "http") as gateway, aiohttp.ClientSession() as web:
        url = gateway.url

        async def post(body: Any, **headers: str) -> aiohttp.ClientResponse:
            return await web.post(url, json=body, headers={"Accept": BOTH, **headers})

        assert (await post(initialize, Origin="http://evil.example")).status == 403
        assert (await post(initialize, Host="rebind.evil.example")).status == 403
        big = {**initialize, "params": {**initialize["params"], "pad": "x" * 8192}}
        assert (await post(big)).status == 413
        # a 2026-07-28 request without its _meta envelope
        discover = await post({"jsonrpc": "2.0", "id": 7, "method": "server/discover"})
        assert discover.status == 400
        assert (await discover.json())["error"]["code"] == -32602
        assert (await post(listing, **{"Mcp-Session-Id": "nope"})).status == 404

        opened = await post(initialize)
        assert opened.status == 200
        session = {"Mcp-Session-Id": opened.headers["Mcp-Session-Id"]}
        await opened.read()
        bad = await post(listing, **session, **{"MCP-Protocol-Version": "2099-01-01"})
        assert bad.status == 400
        ok = await post(listing, **session, **{"MCP-Protocol-Version": "2025-11-25"})
        assert ok.status == 200
        assert "fx__echo" in await ok.text()

        # idle for 3 s: the session expires, its id gets 404, a new initialize works
        await gateway.wait_for_line("expired after")
        assert (await post(listing, **session)).status == 404
        again = await post(initialize)
        assert again.status == 200 and again.headers["Mcp-Session-Id"] != session["Mcp-Session-Id"]
        fresh = {"Mcp-Session-Id": again.headers["Mcp-Session-Id"]}
        await again.read()
        assert (await web.delete(url, headers=fresh)).status == 200
        assert (await post(listing, **fresh)).status == 404


async def test_legacy_sse_clients_and_two_fronts_in_one_process(tmp_path: Path) -> None:
    transports = {"http": {"port": 0}, "sse": {"port": 0}}
    config = gateway_config(tmp_path, {"fx": stdio_fixture()}, transports=transports)
    async with run_gateway(config, "http", "sse") as gateway:
        assert gateway.urls["sse"].endswith("/sse")
        recorder = Recorder(reply="old")
        async with (
            sse_client(gateway.urls["sse"]) as (read, write),
            ClientSession(read, write, sampling_callback=recorder.sampling) as legacy,
            http_session(gateway.urls["http"]) as modern,
        ):
            with anyio.fail_after(EVENT_TIMEOUT):
                await legacy.initialize()
                assert text_of(await legacy.call_tool("fx__echo", {"text": "x"})) == "echo: x"
                sampled = await legacy.call_tool("fx__sample", {"prompt": "p"})
                assert text_of(sampled) == "sampled: old"
                assert text_of(await modern.call_tool("fx__add", {"a": 1, "b": 2})) == "3"


async def test_the_gateway_mounts_remote_http_and_sse_servers(tmp_path: Path) -> None:
    async with fixture_backend("http") as http_url, fixture_backend("sse") as sse_url:
        servers = {
            "remote": {"transport": "http", "url": http_url, "headers": {"X-Mount-Key": "k1"}},
            "old": {"transport": "sse", "url": sse_url},
        }
        config = gateway_config(tmp_path, servers)
        async with (
            run_gateway(config, "http") as gateway,
            http_session(gateway.url, Authorization="Bearer front-token") as session,
        ):
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert {"remote__echo", "old__echo"} <= names
            with anyio.fail_after(EVENT_TIMEOUT):
                assert text_of(await session.call_tool("old__echo", {"text": "s"})) == "echo: s"
                remote = await session.call_tool("remote__header", {"name": "X-Mount-Key"})
                assert text_of(remote) == "k1"
                leaked = await session.call_tool("remote__header", {"name": "Authorization"})
                assert text_of(leaked) == "-"  # the front client's token never reaches a backend
                progress: list[float] = []

                async def on_progress(value: float, total: float | None, msg: str | None) -> None:
                    progress.append(value)

                slow = await session.call_tool(
                    "remote__slow", {"steps": 2}, progress_callback=on_progress
                )
                assert text_of(slow) == "done 2" and progress == [1, 2]
                sampled = await session.call_tool("remote__sample", {"prompt": "two hops"})
                assert text_of(sampled) == "sampled: hi"


def marker_mount(marker: Path) -> dict[str, Any]:
    """A mount whose process creates ``marker`` as soon as it is spawned."""
    return {"command": sys.executable, "args": ["-c", f"open({str(marker)!r}, 'w').close()"]}


@pytest.mark.parametrize("front", ["http", "sse"])
async def test_a_public_bind_without_auth_is_refused_before_any_backend_starts(
    tmp_path: Path, front: str
) -> None:
    marker = tmp_path / "spawned"
    transports = {front: {"host": "0.0.0.0", "port": 0}}
    config = gateway_config(tmp_path, {"marker": marker_mount(marker)}, transports=transports)
    status, stderr = await run_to_exit(config, front)
    assert status == 2
    assert f"refusing to serve {front} on '0.0.0.0' without authentication" in stderr
    assert "vmcp: serving" not in stderr
    assert not marker.exists()  # refused before the gateway spawned its backends


async def test_a_restarted_http_backend_is_initialized_again(tmp_path: Path) -> None:
    first, url = await start_fixture_backend("http")
    try:
        config = gateway_config(tmp_path, {"remote": {"transport": "http", "url": url}})
        notes = Notes()
        async with (
            run_gateway(config, "http") as gateway,
            http_session(gateway.url, message_handler=notes) as session,
        ):
            with anyio.fail_after(EVENT_TIMEOUT):
                assert text_of(await session.call_tool("remote__echo", {"text": "1"})) == "echo: 1"
            first.kill()  # it crashes, and comes back on the same port without the session
            await first.wait()
            port = url.split(":")[2].split("/")[0]
            async with fixture_backend("http", "--port", port):
                # the mount's tools leave the list, then come back once it is re-initialized
                await notes.wait_for("notifications/tools/list_changed", count=2, timeout=30)
                with anyio.fail_after(EVENT_TIMEOUT):
                    result = await session.call_tool("remote__echo", {"text": "2"})
                assert text_of(result) == "echo: 2"
        assert any("went away" in line for line in gateway.stderr)
    finally:
        await stop_process(first)


async def test_bad_bodies_get_json_rpc_errors_with_their_id(tmp_path: Path) -> None:
    """Lone surrogates, bad UTF-8 and deep nesting get a JSON-RPC error body (not a
    plain-text 500); refusals name the request's id; a bad request leaves no id in flight."""
    config = gateway_config(tmp_path, {"fx": stdio_fixture()})
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t"}}}
    async with run_gateway(config, "http") as gateway, aiohttp.ClientSession() as web:
        url = gateway.url
        headers = {"Accept": "application/json", "Content-Type": "application/json"}

        async def post(body: bytes, **extra: str) -> tuple[int, Any]:
            async with web.post(url, data=body, headers={**headers, **extra}) as response:
                assert response.content_type == "application/json"
                return response.status, await response.json()

        async with web.post(url, data=json.dumps(initialize), headers=headers) as response:
            assert response.status == 200
            session = {"Mcp-Session-Id": response.headers["Mcp-Session-Id"]}
        deep = b"[" * 2000 + b"]" * 2000
        for body, request_id, code in [
            (b'{"jsonrpc":"2.0","id":2,"method":"ping","params":{"x":"\\ud800"}}', 2, -32700),
            (b'{"jsonrpc":"2.0","id":3,"method":"ping","params":{"x":"\xed\xa0\x80"}}', 3, -32700),
            (b'{"jsonrpc":"2.0","id":4,"method":"ping","params":' + deep + b"}", 4, -32600),
            (b'{"jsonrpc":"2.0","id":5}', 5, -32600),
        ]:
            status, reply = await post(body, **session)
            assert status == 400, body
            assert (reply["id"], reply["error"]["code"]) == (request_id, code), body
        # a refusal at the HTTP level names the request it refuses
        status, reply = await post(b'{"jsonrpc":"2.0","id":6,"method":"ping"}', **session,
                                   **{"MCP-Protocol-Version": "2099-01-01"})
        assert status == 400 and reply["id"] == 6
        # method null: answered -32600, and id 555 is free again at once
        status, reply = await post(b'{"jsonrpc":"2.0","id":555,"method":null}', **session)
        assert status == 200 and reply["id"] == 555 and reply["error"]["code"] == -32600
        status, reply = await post(b'{"jsonrpc":"2.0","id":555,"method":"ping"}', **session)
        assert status == 200 and reply == {"jsonrpc": "2.0", "id": 555, "result": {}}
        # non-object arguments never reach the backend
        status, reply = await post(json.dumps({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "fx__echo", "arguments": ["hi"]}}).encode(), **session)
        assert status == 200 and reply["error"]["code"] == -32602


@pytest.mark.parametrize("get_status", ["404", "405"])
async def test_a_stateless_backend_without_a_get_stream_is_mounted(
    tmp_path: Path, get_status: str
) -> None:
    async with fixture_backend("http", "--stateless", "--get-status", get_status) as url:
        config = gateway_config(tmp_path, {"remote": {"transport": "http", "url": url}})
        async with run_gateway(config, "http") as gateway, http_session(gateway.url) as session:
            with anyio.fail_after(EVENT_TIMEOUT):
                assert text_of(await session.call_tool("remote__echo", {"text": "1"})) == "echo: 1"
                assert text_of(await session.call_tool("remote__add", {"a": 2, "b": 3})) == "5"
                names = {tool.name for tool in (await session.list_tools()).tools}
        assert "remote__echo" in names
        assert not any("ended the session" in line for line in gateway.stderr)


async def test_a_request_the_gateway_sheds_gets_503_with_retry_after(tmp_path: Path) -> None:
    asked, answer, sampled = anyio.Event(), anyio.Event(), anyio.Event()

    class Blocking(Recorder):
        async def sampling(
            self, context: Any, params: types.CreateMessageRequestParams
        ) -> types.CreateMessageResult:
            asked.set()
            await answer.wait()
            return await super().sampling(context, params)

    mount = stdio_fixture(max_in_flight=1, max_queue=0)
    config = gateway_config(tmp_path, {"fx": mount})
    async with (
        run_gateway(config, "http") as gateway,
        http_session(gateway.url, Blocking()) as session,
        http_client() as raw,
        anyio.create_task_group() as tasks,
    ):
        results: list[types.CallToolResult] = []

        async def sample() -> None:
            results.append(await session.call_tool("fx__sample", {"prompt": "p"}))
            sampled.set()

        tasks.start_soon(sample)
        with anyio.fail_after(EVENT_TIMEOUT):
            await asked.wait()  # the mount's one slot is taken
            headers = {"Accept": BOTH, "MCP-Protocol-Version": "2025-06-18"}
            init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"}}}
            opened = await raw.post(gateway.url, json=init, headers=headers)
            headers["Mcp-Session-Id"] = opened.headers["Mcp-Session-Id"]
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await raw.post(gateway.url, json=note, headers=headers)).status_code == 202
            call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "fx__echo", "arguments": {"text": "t"}}}
            for accept in (BOTH, "application/json"):
                shed = await raw.post(gateway.url, json=call, headers={**headers, "Accept": accept})
                assert shed.status_code == 503
                assert shed.headers["Retry-After"] == "1"
                body = shed.json()
                assert body["id"] == 2 and body["error"]["code"] == -32000
            answer.set()
            await sampled.wait()
        assert text_of(results[0]) == "sampled: hi"
