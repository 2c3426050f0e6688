"""W3C trace context in HTTP headers on the legacy HTTP+SSE front (each POST's) and on the
WebSocket front (the handshake's, the connection's), continued by the gateway's spans and
passed on to the backend, with a real ``vmcp start`` and a real OTLP/HTTP receiver; and one
trace through two chained gateways (the inner one an HTTP backend of the outer) end to end.

The SSE client is the SDK's (its headers go on every request it makes); the WebSocket client
speaks JSON-RPC frames itself, setting the headers only on its opening handshake.
"""

from __future__ import annotations

import itertools
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
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.sse import sse_client
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otlp_receiver import attributes
from websockets.asyncio.client import connect

pytestmark = [pytest.mark.anyio,
              pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

TIMEOUT = 30.0
SSE_TRACE, SSE_PARENT = "11111111111111111111111111111111", "1111111111111111"
WS_TRACE, WS_PARENT = "22222222222222222222222222222222", "2222222222222222"
CHAIN_TRACE, CHAIN_PARENT = "33333333333333333333333333333333", "3333333333333333"

BACKEND = """
import itertools
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
    async with serve(config, {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp}, "sse", "ws") as urls:
        yield urls


@asynccontextmanager
async def serve(config: Path, env: dict[str, str], *fronts: str) -> AsyncIterator[dict[str, str]]:
    """``vmcp --config CONFIG start -t FRONT...`` with its own home beside the configuration
    and ``env`` added; yields each front's URL once every one serves."""
    process = await anyio.open_process(
        [sys.executable, "-m", "vmcp", "--config", str(config), "start",
         *(arg for front in fronts for arg in ("-t", front))],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "VMCP_HOME": str(config.parent / "home"), **env})
    urls: dict[str, str] = {}
    lines: list[str] = []
    try:
        with anyio.fail_after(TIMEOUT):
            await _read_urls(process, urls, lines, len(fronts))
        yield urls
    finally:
        process.terminate()
        with anyio.move_on_after(TIMEOUT, shield=True):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        print("--- gateway stderr ---\n" + "".join(lines))


async def _read_urls(process: Process, urls: dict[str, str], lines: list[str],
                     fronts: int) -> None:
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
                if len(urls) == fronts:
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


async def test_a_trace_through_two_chained_gateways(
    tmp_path: Path, receiver: tuple[str, list[Span]]
) -> None:
    """A client -> gateway "outer" (stdio) -> gateway "inner" (an HTTP backend of outer) ->
    backend: one trace, each hop's span the parent of the next, the backend seeing the last."""
    otlp, spans = receiver
    (tmp_path / "backend.py").write_text(BACKEND, encoding="utf-8")
    inner = tmp_path / "inner" / "vmcp.toml"
    inner.parent.mkdir()
    inner.write_text(
        "[transports.http]\nport = 0\n\n"
        f"[servers.tracee]\ncommand = {json.dumps(sys.executable)}\n"
        f'args = [{json.dumps(str(tmp_path / "backend.py"))}]\n', encoding="utf-8")
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp}
    async with serve(inner, env, "http") as urls:
        outer = tmp_path / "outer" / "vmcp.toml"
        outer.parent.mkdir()
        outer.write_text(f'[servers.inner]\ntransport = "http"\nurl = "{urls["http"]}"\n',
                         encoding="utf-8")
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "vmcp", "--config", str(outer), "start"],
            env={**os.environ, **env, "VMCP_HOME": str(outer.parent / "home")})
        meta = {"traceparent": f"00-{CHAIN_TRACE}-{CHAIN_PARENT}-01"}
        with (tmp_path / "outer.log").open("w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                with anyio.fail_after(TIMEOUT):
                    await session.initialize()
                    result = await session.call_tool("inner__tracee__context", {},
                                                     meta=meta)  # type: ignore[arg-type]
        backend_saw = json.loads(result.content[0].text)  # type: ignore[union-attr]
    chain = sorted((s for s in spans if s.trace_id.hex() == CHAIN_TRACE and
                    s.name.startswith("tools/call")), key=lambda s: s.start_time_unix_nano)
    # outer's server span, outer's call to inner, inner's server span, inner's call to tracee
    assert [(s.name, s.kind) for s in chain] == [
        ("tools/call tracee__context", Span.SPAN_KIND_SERVER),
        ("tools/call inner", Span.SPAN_KIND_CLIENT),
        ("tools/call context", Span.SPAN_KIND_SERVER),
        ("tools/call tracee", Span.SPAN_KIND_CLIENT)], (tmp_path / "outer.log").read_text()
    assert chain[0].parent_span_id.hex() == CHAIN_PARENT
    for parent, child in itertools.pairwise(chain):
        assert child.parent_span_id == parent.span_id
    assert backend_saw["traceparent"] == f"00-{CHAIN_TRACE}-{chain[-1].span_id.hex()}-01"
