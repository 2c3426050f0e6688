"""What tracing costs: the stdio scenario's gateway, without and with ``vmcp-trace-otel``.

Both gateways mount the same fixture backend. ``traced`` has tracing on (the standard
``OTEL_EXPORTER_OTLP_ENDPOINT``) and exports every span over OTLP/HTTP to a receiver in this
process that accepts and discards them, so the figures include making, batching, encoding and
sending the spans (the export runs in the SDK's own thread inside the gateway process).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

from bench.procs import Command, fixture_mount
from bench.scenarios.common import MOUNT, Workspace
from bench.scenarios.stdio import measure
from bench.settings import BenchSettings

TARGETS = ("gateway", "traced")


class _Discard(BaseHTTPRequestHandler):
    """Answers every OTLP export with an empty success."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextlib.contextmanager
def _receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Discard)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def unavailable() -> str | None:
    """Why tracing cannot be measured here, or None."""
    try:
        import vmcp_trace_otel.tracing  # noqa: F401
    except ImportError as exc:
        return f"vmcp-trace-otel is not installed: {exc}"
    return None


def run(settings: BenchSettings) -> dict[str, Any]:
    """Measure both gateways, interleaved; the added latency and CPU of tracing."""
    reason = unavailable()
    if reason is not None:
        return {"status": "skipped", "reason": reason}
    space = Workspace(settings, "tracing")
    plain = space.gateway("gateway", {MOUNT: fixture_mount()})
    traced = space.gateway("traced", {MOUNT: fixture_mount()})
    with _receiver() as url:
        commands = {
            "gateway": Command(plain.argv, {**plain.env, "OTEL_SDK_DISABLED": "true"}),
            "traced": Command(traced.argv, {**traced.env, "OTEL_EXPORTER_OTLP_ENDPOINT": url,
                                            "OTEL_SERVICE_NAME": "vmcp-bench"}),
        }
        tools = dict.fromkeys(TARGETS, f"{MOUNT}__tool_0")
        targets = measure(settings, space, commands, tools)
    t = targets
    return {"status": "ok", "targets": targets, "added_by_tracing": {
        "p50_us": round(t["traced"]["p50_us"] - t["gateway"]["p50_us"], 1),
        "cpu_us_per_call": round(t["traced"]["cpu_us_per_call"]
                                 - t["gateway"]["cpu_us_per_call"], 1),
        "pipelined_throughput_ratio": round(
            t["traced"]["calls_per_s"] / t["gateway"]["calls_per_s"], 3),
    }}
