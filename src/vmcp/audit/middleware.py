"""The audit middleware: times each routed call and hands its record to every sink."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from vmcp.audit.record import build_record, outcome_of
from vmcp.routing.middleware import CallNext, Middleware, RoutedRequest

Sink = Callable[[dict[str, Any]], None]


def audit_middleware(sinks: list[Sink]) -> Middleware:
    """A middleware handing one record per call to every sink."""

    async def audit(request: RoutedRequest, call_next: CallNext) -> dict[str, Any]:
        started_at, started = time.time(), time.perf_counter()
        result: dict[str, Any] | None = None
        error: BaseException | None = None
        try:
            result = await call_next(request)
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            record = build_record(request, started_at, time.perf_counter() - started,
                                  outcome_of(result, error))
            for sink in sinks:
                sink(record)

    return audit
