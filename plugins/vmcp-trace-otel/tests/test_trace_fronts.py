"""W3C trace context in HTTP headers on the legacy HTTP+SSE front (each POST's) and on the
WebSocket front (the handshake's, the connection's), continued by the gateway's spans and
passed on to the backend, with a real ``vmcp start`` and a real OTLP/HTTP receiver.

The SSE client is the SDK's (its headers go on every request it makes); the WebSocket client
speaks JSON-RPC frames itself, setting the headers only on its opening handshake.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream
from mcp import ClientSession
from mcp.client.sse import sse_client
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otlp_receiver import attributes
from websockets.asyncio.client import connect

pytestmark = [pytest.mark.anyio,
              pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

TIMEOUT = 30.0
SSE_TRACE, SSE_PARENT = "11111111111111111111111111111111", "1111111111111111"
WS_TRACE, WS_PARENT = "22222222222222222222222222222222", "2222222222222222"

BACKEND = """
import json
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("tracee")


@server.tool()
def context(ctx: Context) -> str:
    meta = ctx.request_context.meta or {}
    return json.dumps({key: meta.get(key) for key in ("traceparent", "tracestate")})


server.run("stdio")
"""


@pytest.fixture
def anyio_backend() -> str:
    """The gateway's client runs on asyncio."""
    return "asyncio"


@asynccontextmanager
async def gateway(tmp_path: Path, otlp: str) -> AsyncIterator[dict[str, str]]:
    """``vmcp start -t sse -t ws``; yields each front's URL once both serve."""
    (tmp_path / "backend.py").write_text(BACKEND, encoding="utf-8")
    config = tmp_path / "vmcp.toml"
    config.write_text(
        "[transports.sse]\nport = 0\n\n[transports.ws]\nport = 0\n\n"
        f"[servers.tracee]\ncommand = {json.dumps(sys.executable)}\n"
        f'args = [{json.dumps(str(tmp_path / "backend.py"))}]\n', encoding="utf-8")
    env = {**os.environ, "VMCP_HOME": str(tmp_path / "home"),
           "OTEL_EXPORTER_OTLP_ENDPOINT": otlp}
    process = await anyio.open_process(
        [sys.executable, "-m", "vmcp", "--config", str(config), "start", "-t", "sse",
         "-t", "ws"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, env=env)
    urls: dict[str, str] = {}
    lines: list[str] = []
    try:
        with anyio.fail_after(TIMEOUT):
            await _read_urls(process, urls, lines)
        yield urls
    finally:
        process.terminate()
        with anyio.move_on_after(TIMEOUT, shield=True):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        print("--- gateway stderr ---\n" + "".join(lines))


async def _read_urls(process: Process, urls: dict[str, str], lines: list[str]) -> None:
    assert process.stderr is not None
    buffer = ""
    async for chunk in TextReceiveStream(process.stderr):
        buffer += chunk
        *complete, buffer = buffer.split("\n")
        for line in complete:
            lines.append(line + "\n")
            if line.startswith("vmcp: serving "):
                name, _, url = line.removeprefix("vmcp: serving ").partition(" on ")
                urls[name] = url
                if len(urls) == 2:
                    return
    raise AssertionError("gateway did not start:\n" + "".join(lines))


async def _call_over_sse(url: str) -> dict[str, Any]:
    headers = {"traceparent": f"00-{SSE_TRACE}-{SSE_PARENT}-01", "tracestate": "front=sse"}
    async with sse_client(url, headers=headers) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("tracee__context", {})
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


async def _call_over_ws(url: str) -> dict[str, Any]:
    headers = {"traceparent": f"00-{WS_TRACE}-{WS_PARENT}-01"}
    async with connect(url, subprotocols=["mcp"],  # type: ignore[list-item]
                       additional_headers=headers) as websocket:
        async def ask(request_id: int, method: str, params: dict[str, Any]) -> Any:
            await websocket.send(json.dumps({"jsonrpc": "2.0", "id": request_id,
                                             "method": method, "params": params}))
            while True:
                message = json.loads(await websocket.recv())
                if message.get("id") == request_id:
                    return message["result"]

        await ask(1, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                    "clientInfo": {"name": "ws-test", "version": "1"}})
        await websocket.send(json.dumps({"jsonrpc": "2.0",
                                         "method": "notifications/initialized"}))
        result = await ask(2, "tools/call", {"name": "tracee__context", "arguments": {}})
    return json.loads(result["content"][0]["text"])


async def test_header_trace_context_on_the_sse_and_ws_fronts(
    tmp_path: Path, receiver: tuple[str, list[Span]]
) -> None:
    otlp, spans = receiver
    async with gateway(tmp_path, otlp) as urls:
        with anyio.fail_after(TIMEOUT):
            sse_saw = await _call_over_sse(urls["sse"])
            ws_saw = await _call_over_ws(urls["ws"])

    calls = {span.trace_id.hex(): span for span in spans if span.name == "tools/call context"}
    assert calls.keys() == {SSE_TRACE, WS_TRACE}, [s.name for s in spans]
    assert calls[SSE_TRACE].parent_span_id.hex() == SSE_PARENT
    assert calls[WS_TRACE].parent_span_id.hex() == WS_PARENT
    backends = {span.trace_id.hex(): span for span in spans
                if span.kind == Span.SPAN_KIND_CLIENT}
    assert attributes(backends[SSE_TRACE])["vmcp.mount"] == "tracee"
    # the backend continues the gateway's backend span, in the client's trace
    assert sse_saw == {"traceparent": f"00-{SSE_TRACE}-{backends[SSE_TRACE].span_id.hex()}-01",
                       "tracestate": "front=sse"}
    assert ws_saw == {"traceparent": f"00-{WS_TRACE}-{backends[WS_TRACE].span_id.hex()}-01",
                      "tracestate": None}
