"""W3C trace context across an HTTP hop: a front client's ``traceparent``/``tracestate``
headers reach an HTTP backend as headers again (through ``_meta`` inside the gateway), and
a request's own ``_meta`` context wins over the headers."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx2
import mcp.types as types
import pytest
from http_harness import EVENT_TIMEOUT, fixture_backend, run_gateway, write_config
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from vmcp.transports.tracecontext import headers_from_meta, meta_from_headers

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

FRONT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
OWN = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _text(result: object) -> str:
    assert isinstance(result, types.CallToolResult)
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


async def test_trace_headers_reach_an_http_backend(tmp_path: Path) -> None:
    async with fixture_backend("http") as backend_url:
        config = write_config(tmp_path / "vmcp.toml", {
            "transports.http": {"port": 0},
            "servers.fix": {"transport": "http", "url": backend_url},
        })
        async with run_gateway(config, "http") as gateway:
            headers = {"traceparent": FRONT, "tracestate": "vendor=1"}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=EVENT_TIMEOUT) as http,
                streamable_http_client(gateway.url, http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                with anyio.fail_after(EVENT_TIMEOUT * 3):
                    await session.initialize()
                    parent = await session.call_tool("fix__header", {"name": "traceparent"})
                    state = await session.call_tool("fix__header", {"name": "tracestate"})
                    own = await session.call_tool(
                        "fix__header", {"name": "traceparent"},
                        meta={"traceparent": OWN})  # type: ignore[arg-type]
    assert (_text(parent), _text(state), _text(own)) == (FRONT, "vendor=1", OWN)


def test_only_requests_without_their_own_context_take_the_headers() -> None:
    headers = {"traceparent": FRONT}
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}}
    assert meta_from_headers(request, headers)["params"] == {
        "name": "x", "_meta": {"traceparent": FRONT}}
    assert request["params"] == {"name": "x"}  # not changed in place
    own = {**request, "params": {"_meta": {"traceparent": OWN, "progressToken": 3}}}
    assert meta_from_headers(own, headers) is own
    notification = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {}}
    assert meta_from_headers(notification, headers) is notification
    assert headers_from_meta(own) == {"traceparent": OWN}
    assert headers_from_meta(request) is None
