"""The gateway's metrics, in a registry of their own, exposed in the Prometheus text format.

Only what must be seen as it happens is counted on the request path: routed requests by
mount, method and outcome, and their latency. Everything else (in-flight requests, sessions,
mount and replica state, circuit state, cache statistics) is read from the gateway when
``/metrics`` is scraped. None of this exists unless ``[monitoring] metrics_port`` is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from time import perf_counter
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vmcp import __version__
from vmcp.transports.base import JsonMessage

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway

#: latency buckets (seconds): sub-millisecond relays up to long tool calls
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, 30.0, 60.0, 120.0)
CIRCUIT_STATES = ("closed", "open", "half_open")
Relay = Callable[[JsonMessage], None]


def outcome_of(message: JsonMessage) -> str:
    """``ok``, ``error`` (a JSON-RPC error) or ``tool_error`` (a result with ``isError``)."""
    if "error" in message:
        return "error"
    result = message.get("result")
    if isinstance(result, dict) and result.get("isError") is True:
        return "tool_error"
    return "ok"


class GatewayMetrics:
    """Counters kept while the gateway runs, and the view of its state at scrape time."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        #: (mount, method, outcome) -> routed requests answered
        self.requests: dict[tuple[str, str, str], int] = {}
        #: mount -> backend restarts
        self.restarts: dict[str, int] = {}
        #: mount -> [requests answered, seconds they took together] (for rates and means)
        self.mount_totals: dict[str, list[float]] = {}
        self.registry = CollectorRegistry()
        self._latency = Histogram(
            "vmcp_request_duration_seconds", "Latency of routed requests, by mount and method.",
            ["mount", "method"], buckets=BUCKETS, registry=self.registry)
        self._observers: dict[tuple[str, str], Callable[[float], None]] = {}
        self.registry.register(_StateCollector(self))
        ProcessCollector(registry=self.registry)

    def record(self, mount_id: str, method: str, outcome: str, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (mount_id, method, outcome)
        self.requests[key] = self.requests.get(key, 0) + 1
        totals = self.mount_totals.get(mount_id)
        if totals is None:
            totals = self.mount_totals[mount_id] = [0, 0.0]
        totals[0] += 1
        totals[1] += seconds
        observe = self._observers.get((mount_id, method))
        if observe is None:
            observe = self._latency.labels(mount_id, method).observe
            self._observers[(mount_id, method)] = observe
        observe(seconds)

    def record_call(self, mount_id: str, method: str, result: dict[str, Any] | None,
                    seconds: float) -> None:
        """Count one awaited request: its result, or None when it failed."""
        outcome = "error" if result is None else outcome_of({"result": result})
        self.record(mount_id, method, outcome, seconds)

    def track(self, mount_id: str, method: str, relay: Relay) -> Relay:
        """Wrap the relay callback of one forwarded request so that its answer is counted."""
        started = perf_counter()

        def counted(message: JsonMessage) -> None:
            self.record(mount_id, method, outcome_of(message), perf_counter() - started)
            relay(message)

        return counted

    def backend_restarted(self, mount_id: str) -> None:
        """A replica of ``mount_id`` was restarted after its backend went away."""
        self.restarts[mount_id] = self.restarts.get(mount_id, 0) + 1

    def totals(self, mount_id: str | None = None) -> tuple[int, int]:
        """(requests, errors) of one mount, or of all; errors include ``tool_error``."""
        total = errors = 0
        for (mount, _, outcome), count in list(self.requests.items()):
            if mount_id is None or mount == mount_id:
                total += count
                if outcome != "ok":
                    errors += count
        return total, errors

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Reads the gateway's state at scrape time."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics, gateway = self.metrics, self.metrics.gateway
        info = GaugeMetricFamily("vmcp_info", "The running gateway.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        requests = CounterMetricFamily("vmcp_requests", "Routed requests answered, by mount, "
                                       "method and outcome.", labels=["mount", "method",
                                                                      "outcome"])
        for (mount_id, method, outcome), count in list(metrics.requests.items()):
            requests.add_metric([mount_id, method, outcome], count)
        yield requests
        restarts = CounterMetricFamily("vmcp_backend_restarts", "Backend replicas restarted "
                                       "after they went away.", labels=["mount"])
        for mount_id, count in list(metrics.restarts.items()):
            restarts.add_metric([mount_id], count)
        yield restarts
        sessions = GaugeMetricFamily("vmcp_sessions", "Front client sessions open.")
        sessions.add_metric([], len(gateway.sessions))
        yield sessions
        tasks = _loop_tasks()
        if tasks is not None:
            gauge = GaugeMetricFamily("vmcp_event_loop_tasks", "Tasks alive on the gateway's "
                                      "event loop (steady under a steady load: a count that "
                                      "keeps rising is a leak).")
            gauge.add_metric([], tasks)
            yield gauge
        yield from _mount_metrics(gateway)
        yield from _cache_metrics(gateway)


def _loop_tasks() -> int | None:
    """Tasks not yet done on the running event loop (None when scraped outside one:
    ``/metrics`` is served on the gateway's loop)."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        return None


def _mount_metrics(gateway: Gateway) -> Iterator[Metric]:
    in_flight = GaugeMetricFamily("vmcp_requests_in_flight", "Requests sent to a mount and "
                                  "not yet answered.", labels=["mount"])
    up = GaugeMetricFamily("vmcp_mount_up", "1 when the mount serves requests.",
                           labels=["mount"])
    healthy = GaugeMetricFamily("vmcp_replica_healthy", "1 when a replica is connected and "
                                "passes its health checks.", labels=["mount", "replica"])
    circuit = GaugeMetricFamily("vmcp_circuit_state", "1 for the state each replica's circuit "
                                "breaker is in.", labels=["mount", "replica", "state"])
    for mount in list(gateway.mounts.values()):
        in_flight.add_metric([mount.mount_id], mount.in_flight)
        up.add_metric([mount.mount_id], 1 if mount.state == "up" else 0)
        for replica in list(mount.replicas):
            labels = [mount.mount_id, replica.replica_id]
            healthy.add_metric(labels, 1 if replica.alive and replica.healthy else 0)
            for state in CIRCUIT_STATES:
                circuit.add_metric([*labels, state], 1 if replica.breaker.state == state else 0)
    pinning = GaugeMetricFamily("vmcp_tools_changed", "Tools whose definition changed since "
                                "it was pinned, by mount and what was done (withheld or "
                                "flagged).", labels=["mount", "state"])
    for state, changed in (("withheld", gateway.pinning.withheld),
                           ("flagged", gateway.pinning.flagged)):
        for mount_id, tools in list(changed.items()):
            pinning.add_metric([mount_id, state], len(tools))
    yield from (in_flight, up, healthy, circuit, pinning)


def _cache_metrics(gateway: Gateway) -> Iterator[Metric]:
    """The cache layer's counters (hits, misses, evictions ...), when the gateway has one."""
    snapshot = getattr(getattr(gateway, "cache", None), "snapshot", None)
    if snapshot is None:
        return
    for name, value in snapshot().items():
        family = CounterMetricFamily(f"vmcp_cache_{name}", f"Cache layer: {name}.")
        family.add_metric([], value)
        yield family
