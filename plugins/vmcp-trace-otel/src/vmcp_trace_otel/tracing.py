"""Spans for routed calls: a provider of its own, the middleware making them, W3C trace
context read from and written to ``_meta``."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import replace
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from vmcp.protocol.errors import RpcError
from vmcp.routing.middleware import CallNext, CallNotes, RoutedRequest
from vmcp_trace_otel.settings import OtelSettings

#: the parameter naming what a method acts on, and the attribute it is recorded as
_TARGETS = {
    "tools/call": ("name", "gen_ai.tool.name"),
    "prompts/get": ("name", "gen_ai.prompt.name"),
    "resources/read": ("uri", "mcp.resource.uri"),
    "resources/subscribe": ("uri", "mcp.resource.uri"),
    "resources/unsubscribe": ("uri", "mcp.resource.uri"),
}
_PROPAGATOR = TraceContextTextMapPropagator()
#: the SDK's logger that warns once per span dropped when its export queue is full
_SDK_QUEUE_LOGGER = "opentelemetry.sdk._shared_internal"
#: seconds between two warnings about dropped spans
DROP_NOTICE_INTERVAL = 10.0


class _DropNotices(logging.Filter):
    """Lets one "Queue full, dropping" warning through per interval, with how many were
    dropped since the last one: under load the SDK would log one line per span dropped, and
    writing those lines cost far more than the spans."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self._next = 0.0
        self._dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Queue full"):
            return True
        self._dropped += 1
        now = time.monotonic()
        if now < self._next:
            return False
        record.msg = ("tracing: the span export queue is full; %d span(s) dropped since the "
                      "last notice (OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_SCHEDULE_DELAY)")
        record.args = (self._dropped,)
        self._dropped, self._next = 0, now + self.interval
        return True


def _resource(settings: OtelSettings) -> Resource:
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; [otel] wins.
    if settings.service_name:
        return Resource.create({"service.name": settings.service_name})
    if os.environ.get("OTEL_SERVICE_NAME"):
        return Resource.create()
    return Resource.create({"service.name": "vmcp"})


def _note(spans: tuple[Span, ...], notes: CallNotes) -> None:
    """Record how the router served the call: replica, attempts (above one: retried), cache."""
    for span in spans:
        if notes.replica is not None:
            span.set_attribute("vmcp.replica", notes.replica)
        if notes.attempts:
            span.set_attribute("vmcp.attempts", notes.attempts)
            span.set_attribute("vmcp.retried", notes.attempts > 1)
        if notes.cache is not None:
            span.set_attribute("vmcp.cache", notes.cache)


class Tracing:
    """One gateway's tracer provider and the middleware that makes its spans."""

    def __init__(self, settings: OtelSettings) -> None:
        self.provider = TracerProvider(resource=_resource(settings))
        exporter = (OTLPSpanExporter(endpoint=settings.endpoint) if settings.endpoint
                    else OTLPSpanExporter())
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("vmcp_trace_otel")
        self._notices = _DropNotices(DROP_NOTICE_INTERVAL)
        logging.getLogger(_SDK_QUEUE_LOGGER).addFilter(self._notices)

    async def middleware(self, request: RoutedRequest, call_next: CallNext) -> dict[str, Any]:
        """Trace one routed call: the gateway's span, and its backend call inside it."""
        params = request.params
        meta = params.get("_meta")
        parent = (_PROPAGATOR.extract(meta)
                  if isinstance(meta, dict) and "traceparent" in meta else None)
        method = request.method
        attributes: dict[str, Any] = {"mcp.method.name": method, "vmcp.mount": request.mount_id,
                                      "mcp.session.id": request.caller.session_id}
        persona = request.caller.persona
        if persona is not None:
            attributes["vmcp.persona"] = persona
        name = method
        key, attribute = _TARGETS.get(method, (None, None))
        if key is not None and isinstance(target := params.get(key), str):
            attributes[attribute] = target  # type: ignore[index]
            name = f"{method} {target}"
        if request.request_id is not None:
            attributes["jsonrpc.request.id"] = str(request.request_id)
        if request.approval is not None:
            attributes["vmcp.approval"] = request.approval
        tracer = self.tracer
        with contextlib.ExitStack() as spans:
            span = spans.enter_context(tracer.start_as_current_span(
                name, context=parent, kind=SpanKind.SERVER, attributes=attributes))
            # a call the caller did not approve is answered without a backend call
            backend = None if request.approval not in (None, "approved") else spans.enter_context(
                tracer.start_as_current_span(f"{method} {request.mount_id}",
                                             kind=SpanKind.CLIENT, attributes=attributes))
            touched = (span,) if backend is None else (span, backend)
            forwarded = request
            if backend is not None:
                carrier: dict[str, str] = {}
                _PROPAGATOR.inject(carrier)  # the backend span's context
                forwarded = replace(request,
                                    params={**params, "_meta": {**(meta or {}), **carrier}})
            try:
                result = await call_next(forwarded)
            except RpcError as exc:
                for each in touched:
                    each.set_attribute("vmcp.outcome", "error")
                    each.set_attribute("rpc.jsonrpc.error_code", exc.code)
                    each.set_status(Status(StatusCode.ERROR, exc.message))
                raise
            finally:
                _note(touched, request.notes)
            outcome = "tool_error" if result.get("isError") else "ok"
            for each in touched:
                each.set_attribute("vmcp.outcome", outcome)
            if outcome == "tool_error":
                span.set_status(Status(StatusCode.ERROR, "the tool reported an error"))
            return result

    def shutdown(self) -> None:
        """Export what is buffered and stop (blocking: run it off the event loop)."""
        self.provider.shutdown()
        logging.getLogger(_SDK_QUEUE_LOGGER).removeFilter(self._notices)
