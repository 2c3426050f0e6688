"""Fixtures of the tracing tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otlp_receiver import serve_receiver


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[Span]]]:
    """An OTLP/HTTP traces receiver: yields its base URL and the spans it received."""
    with serve_receiver() as served:
        yield served
