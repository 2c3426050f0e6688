"""End to end: ``vmcp start`` serving 2026-07-28 clients over HTTP on the endpoint its
handshake-era clients use, in front of a stdio backend written with the official SDK."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import mcp.types as types
import pytest
from http_harness import (
    EVENT_TIMEOUT,
    fixture_backend,
    run_gateway,
    stdio_fixture,
    write_config,
)
from mcp import Client
from vmcp_transport_http.sse import iter_events

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

MODERN = "2026-07-28"
BOTH = "application/json, text/event-stream"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
}


def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "vmcp.toml", {
        "transports.http": {"port": 0},
        "servers.fx": stdio_fixture(),
    })


def text_of(result: Any) -> str:
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


def tool_call(request_id: int, name: str, arguments: dict[str, Any],
              meta: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """A raw modern ``tools/call`` and the headers a conforming client sends with it."""
    body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments, "_meta": {**META, **(meta or {})}}}
    headers = {"Accept": BOTH, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call",
               "Mcp-Name": name}
    return body, headers


async def test_a_modern_sdk_client_works_through_vmcp(tmp_path: Path) -> None:
    logs: list[Any] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async with run_gateway(config(tmp_path), "http") as gateway:
        with anyio.fail_after(EVENT_TIMEOUT * 3):
            async with Client(gateway.url, mode=MODERN, logging_callback=on_log,
                              log_level="info") as client:
                assert client.protocol_version == MODERN
                names = {tool.name for tool in (await client.list_tools()).tools}
                assert {"fx__echo", "fx__slow", "fx__region"} <= names
                assert text_of(await client.call_tool("fx__echo", {"text": "a"})) == "echo: a"
                # the SDK mirrors region into Mcp-Param-Region, which vmcp checks
                region = await client.call_tool("fx__region", {"region": "eu", "query": "q"})
                assert text_of(region) == "q in eu"

                progress: list[float] = []

                async def on_progress(value: float, total: float | None, message: str | None
                                      ) -> None:
                    progress.append(value)

                slow = await client.call_tool("fx__slow", {"steps": 2},
                                              progress_callback=on_progress)
                assert text_of(slow) == "done 2"
                assert progress == [1, 2]
                assert logs == ["did step 1", "did step 2"]


async def test_auto_and_legacy_clients_share_the_endpoint(tmp_path: Path) -> None:
    async with run_gateway(config(tmp_path), "http") as gateway:
        with anyio.fail_after(EVENT_TIMEOUT * 3):
            async with Client(gateway.url) as auto, Client(gateway.url, mode="legacy") as legacy:
                assert auto.protocol_version == MODERN
                assert legacy.protocol_version == "2025-11-25"
                for client in (auto, legacy):
                    result = await client.call_tool("fx__add", {"a": 2, "b": 3})
                    assert text_of(result) == "5"


async def test_the_header_rules_hold_at_the_gateway(tmp_path: Path) -> None:
    async with run_gateway(config(tmp_path), "http") as gateway, aiohttp.ClientSession() as web:
        body, headers = tool_call(1, "fx__region", {"region": "eu", "query": "q"})
        ok = await web.post(gateway.url, json=body,
                            headers={**headers, "Mcp-Param-Region": "eu"})
        assert ok.status == 200, await ok.text()
        assert "q in eu" in await ok.text()
        for wrong in ({}, {"Mcp-Param-Region": "us"}):
            refused = await web.post(gateway.url, json=body, headers={**headers, **wrong})
            assert refused.status == 400
            assert (await refused.json())["error"]["code"] == -32020
        renamed = await web.post(gateway.url, json=body, headers={**headers, "Mcp-Name": "x"})
        assert (await renamed.json())["error"]["code"] == -32020
        unknown = {**body, "method": "no/such"}
        missing = await web.post(gateway.url, json=unknown,
                                 headers={**headers, "Mcp-Method": "no/such"})
        assert missing.status == 404
        assert (await missing.json())["error"]["code"] == -32601


async def test_closing_the_stream_cancels_the_backend_call(tmp_path: Path) -> None:
    key = uuid.uuid4().hex
    async with run_gateway(config(tmp_path), "http") as gateway, aiohttp.ClientSession() as web:
        body, headers = tool_call(1, "fx__block", {"key": key}, {"progressToken": "p"})
        response = await web.post(gateway.url, json=body, headers=headers)
        assert response.content_type == "text/event-stream"
        with anyio.fail_after(EVENT_TIMEOUT):
            async for event in iter_events(response.content.iter_any(), 1 << 20):
                assert json.loads(event.data)["method"] == "notifications/progress"
                break  # the backend is running the call
        response.close()
        with anyio.fail_after(EVENT_TIMEOUT * 2):
            async with Client(gateway.url, mode=MODERN) as client:
                result = await client.call_tool("fx__was_cancelled", {"key": key})
        assert text_of(result) == f"{key} cancelled"


async def test_a_backend_asking_for_input_is_answered_across_two_posts(tmp_path: Path) -> None:
    prompts: list[str] = []

    async def sampling(context: Any, params: types.CreateMessageRequestParams
                       ) -> types.CreateMessageResult:
        content = params.messages[0].content
        prompts.append(content.text if isinstance(content, types.TextContent) else "")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="hi"), model="m")

    async with run_gateway(config(tmp_path), "http") as gateway:
        with anyio.fail_after(EVENT_TIMEOUT * 3):
            async with Client(gateway.url, mode=MODERN, sampling_callback=sampling) as client:
                # the first POST is answered input_required; its session closes, and the
                # backend's call waits for the retry (a second POST) to bring the answer
                result = await client.call_tool("fx__sample", {"prompt": "hello"})
        assert text_of(result) == "sampled: hi"
        assert prompts == ["hello"]


async def test_an_ask_in_the_same_breath_is_checked_against_the_capabilities(
    tmp_path: Path
) -> None:
    """A remote backend asks for a sample and an elicitation at once, of a 2026-07-28 client
    that declared only sampling. Both arrive on the call's own stream; the second finds the
    call already waiting for input, and is refused there rather than put to the client."""
    asked: list[str] = []

    async def sampling(context: Any, params: types.CreateMessageRequestParams
                       ) -> types.CreateMessageResult:
        asked.append("sampling")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="hi"), model="m")

    async with fixture_backend("http") as remote:
        config = write_config(tmp_path / "vmcp.toml", {
            "transports.http": {"port": 0},
            "servers.remote": {"transport": "http", "url": remote},
        })
        async with run_gateway(config, "http") as gateway:
            with anyio.fail_after(EVENT_TIMEOUT * 3):
                async with Client(gateway.url, mode=MODERN, sampling_callback=sampling) as client:
                    result = await client.call_tool("remote__ask_at_once", {"who": "A"})
    answers = json.loads(text_of(result))
    assert answers["sampling"] == "hi"
    assert answers["elicitation"].startswith("refused: The connected client does not support")
    assert asked == ["sampling"]


async def test_a_listen_stream_carries_the_backends_list_changes(tmp_path: Path) -> None:
    async with run_gateway(config(tmp_path), "http") as gateway:
        with anyio.fail_after(EVENT_TIMEOUT * 3):
            async with (
                Client(gateway.url, mode=MODERN) as listener,
                Client(gateway.url, mode=MODERN) as other,
                listener.listen(tools_list_changed=True) as subscription,
            ):
                assert subscription.honored.tools_list_changed
                assert text_of(await other.call_tool("fx__grow", {"name": "sprout"})) == \
                    "grew sprout"
                async for _event in subscription:
                    break  # the change arrived on the listen's own stream
                names = {tool.name for tool in (await listener.list_tools()).tools}
                assert "fx__sprout" in names
