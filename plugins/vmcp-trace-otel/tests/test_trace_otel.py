"""Traces from a real ``vmcp start`` to a real OTLP/HTTP receiver started by the test.

The receiver (``otlp_receiver.py``) is a small HTTP server decoding each
``ExportTraceServiceRequest`` with the opentelemetry-proto package. A front client (the SDK
over stdio) sends W3C trace context in ``_meta``; the spans must continue it, carry the
call's attributes (never its arguments), and the backend must see the context of the
gateway's backend span.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import anyio
import mcp.types as types
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otlp_receiver import attributes
from vmcp_trace_otel.settings import OtelSettings
from vmcp_trace_otel.tracing import _SDK_QUEUE_LOGGER, _DropNotices

pytestmark = [pytest.mark.anyio,
              pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

TIMEOUT = 30.0
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"

BACKEND = """
import json
import os
import pathlib
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("tracee")


@server.tool()
def context(secret: str, ctx: Context) -> str:
    meta = ctx.request_context.meta or {}
    return json.dumps({key: meta.get(key) for key in ("traceparent", "tracestate")})


@server.tool()
def boom() -> str:
    raise ValueError("boom")


@server.tool()
def flaky(marker: str) -> str:
    # the first replica called dies with the call in flight; the one it fails over to answers
    if not os.path.exists(marker):
        pathlib.Path(marker).write_text("died")
        os._exit(1)
    return "survived"


@server.tool()
def cached() -> str:
    return "the same every time"


server.run("stdio")
"""


@pytest.fixture
def anyio_backend() -> str:
    """The gateway's client runs on asyncio."""
    return "asyncio"


async def test_spans_continue_the_client_trace_and_reach_the_backend(
    tmp_path: Path, receiver: tuple[str, list[Span]]
) -> None:
    url, spans = receiver
    (tmp_path / "backend.py").write_text(BACKEND, encoding="utf-8")
    config = tmp_path / "vmcp.toml"
    launch = (f'command = {json.dumps(sys.executable)}\n'
              f'args = [{json.dumps(str(tmp_path / "backend.py"))}]\n')
    config.write_text(f'[servers.tracee]\n{launch}\n'
                      f'[servers.twin]\n{launch}replicas = 2\ncache_tools = ["cached"]\n'
                      '[servers.twin.retry]\nidempotent_tools = ["flaky"]\n', encoding="utf-8")
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "vmcp", "--config", str(config), "start"],
        env={**os.environ, "VMCP_HOME": str(tmp_path / "home"),
             "OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_SERVICE_NAME": "gateway-under-test"})
    meta = {"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01", "tracestate": "vendor=1"}
    with (tmp_path / "gateway.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            with anyio.fail_after(TIMEOUT):
                await session.initialize()
                seen = await session.call_tool("tracee__context", {"secret": "s3cr3t"},
                                               meta=meta)  # type: ignore[arg-type]
                failed = await session.call_tool("tracee__boom", {})
                survived = await session.call_tool(
                    "twin__flaky", {"marker": str(tmp_path / "died")})
                for _ in range(2):
                    await session.call_tool("twin__cached", {}, meta=meta)  # type: ignore[arg-type]
    assert isinstance(seen, types.CallToolResult) and isinstance(failed, types.CallToolResult)
    assert survived.content[0].text == "survived"  # type: ignore[union-attr]
    assert failed.is_error
    backend_saw = json.loads(seen.content[0].text)  # type: ignore[union-attr]

    # The gateway flushed its spans while stopping, before stdio_client saw it exit.
    assert len(spans) == 10, (tmp_path / "gateway.log").read_text()
    tracee = [s for s in spans if attributes(s)["vmcp.mount"] == "tracee"]
    by_name = {span.name: span for span in tracee if span.kind == Span.SPAN_KIND_SERVER}
    server = by_name["tools/call context"]
    [backend] = [s for s in spans if s.parent_span_id == server.span_id]
    assert backend.name == "tools/call tracee"
    assert server.trace_id.hex() == TRACE_ID and server.parent_span_id.hex() == CLIENT_SPAN
    assert server.kind == Span.SPAN_KIND_SERVER and backend.kind == Span.SPAN_KIND_CLIENT
    assert backend.trace_id == server.trace_id and backend.parent_span_id == server.span_id
    seen_attributes = attributes(server)
    assert seen_attributes["mcp.method.name"] == "tools/call"
    assert seen_attributes["gen_ai.tool.name"] == "context"
    assert seen_attributes["vmcp.mount"] == "tracee" and seen_attributes["vmcp.outcome"] == "ok"
    assert "s3cr3t" not in repr([attributes(s) for s in spans])
    assert backend_saw == {"traceparent": f"00-{TRACE_ID}-{backend.span_id.hex()}-01",
                           "tracestate": "vendor=1"}

    boom = by_name["tools/call boom"]
    assert attributes(boom)["vmcp.outcome"] == "tool_error"
    assert boom.status.code == boom.status.STATUS_CODE_ERROR
    assert boom.parent_span_id == b""  # no context from the client: a new trace
    assert boom.trace_id != server.trace_id
    assert [s.parent_span_id for s in spans if s.trace_id == boom.trace_id
            and s.kind == Span.SPAN_KIND_CLIENT] == [boom.span_id]
    assert attributes(server)["vmcp.replica"] == "tracee-0"
    assert attributes(server)["vmcp.attempts"] == 1
    assert attributes(server)["vmcp.retried"] is False
    assert "vmcp.cache" not in attributes(server)
    assert attributes(server)["jsonrpc.request.id"].isdigit()

    # Failed over: the first replica died with the call in flight, the other one answered.
    flaky = [attributes(s) for s in spans if s.name == "tools/call flaky"]
    assert len(flaky) == 1 and flaky[0]["vmcp.attempts"] == 2 and flaky[0]["vmcp.retried"]
    assert flaky[0]["vmcp.replica"] in ("twin-0", "twin-1")
    assert flaky[0]["vmcp.outcome"] == "ok"
    # Cached: asked once, then answered by the cache (the trace context is no part of the key).
    cached = [attributes(s) for s in spans if s.name == "tools/call cached"]
    assert [a["vmcp.cache"] for a in cached] == ["miss", "hit"]
    assert "vmcp.replica" in cached[0] and "vmcp.replica" not in cached[1]


def test_tracing_is_off_without_an_endpoint_and_bad_settings_are_refused() -> None:
    assert not OtelSettings().active({})
    assert OtelSettings().active({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert not OtelSettings(enabled=True).active({"OTEL_SDK_DISABLED": "true"})
    assert not OtelSettings(enabled=False).active({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"})
    assert OtelSettings.from_table({}) == OtelSettings()
    assert OtelSettings.from_table({"enabled": True}).active({})
    with pytest.raises(Exception, match=r"otel\.colour"):
        OtelSettings.from_table({"colour": "blue"})


def test_dropped_spans_are_noticed_once_per_interval() -> None:
    """The SDK warns once per span dropped when its queue is full: one line per interval."""
    notices = _DropNotices(interval=3600)

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord(_SDK_QUEUE_LOGGER, logging.WARNING, __file__, 1, message,
                                 ("span",), None)

    first = record("Queue full, dropping %s.")
    assert notices.filter(first) and first.getMessage().startswith(
        "tracing: the span export queue is full; 1 span(s) dropped")
    assert not any(notices.filter(record("Queue full, dropping %s.")) for _ in range(500))
    assert notices.filter(record("Shutdown called, ignoring %s."))  # other lines pass
    notices.interval, notices._next = 0.0, 0.0
    later = record("Queue full, dropping %s.")
    assert notices.filter(later) and "501 span(s) dropped" in later.getMessage()
