"""A real OTLP/HTTP traces receiver for the tests: a small HTTP server decoding each
``ExportTraceServiceRequest`` with the opentelemetry-proto package."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from vmcp.testing import local_http_server


@contextmanager
def serve_receiver() -> Iterator[tuple[str, list[Span]]]:
    """Receive traces on a free port: yields the base URL and the spans received so far."""
    spans: list[Span] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path != "/v1/traces" or self.headers["Content-Type"] != (
                    "application/x-protobuf"):
                self.send_error(404)
                return
            request = ExportTraceServiceRequest.FromString(body)
            with lock:
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        spans.extend(scope_spans.spans)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test's output readable."""

    with local_http_server(Handler) as url:
        yield url, spans


def attributes(span: Span) -> dict[str, Any]:
    """A span's attributes as a plain dict."""
    values = {}
    for attribute in span.attributes:
        value = attribute.value
        values[attribute.key] = getattr(value, value.WhichOneof("value"))
    return values
