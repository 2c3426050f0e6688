"""Request rate and latency per mount over the last minutes, for the console's charts.

Sampled from the gateway's own counters (:class:`vmcp.monitoring.metrics.GatewayMetrics`,
which count every routed request and its latency): every ``interval`` seconds, each mount's
requests answered since the last sample give its rate, and the seconds they took its mean
latency. Nothing is added to the request path.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway
    from vmcp.monitoring.metrics import GatewayMetrics


class Traffic:
    """The recent rate (requests/s) and mean latency (ms) of every mount."""

    def __init__(self, gateway: Gateway, metrics: GatewayMetrics, interval: float,
                 points: int) -> None:
        self.gateway = gateway
        self.metrics = metrics
        self.interval = interval
        self.points = points
        #: mount -> (rate, latency) per sample, oldest first
        self.series: dict[str, deque[tuple[float, float]]] = {}
        self._last = {m: (int(t[0]), t[1]) for m, t in metrics.mount_totals.items()}

    def sample(self) -> None:
        """Take one sample of every mount (a mount without requests gets zeros)."""
        totals = self.metrics.mount_totals
        for mount_id in {*self.gateway.mounts, *totals}:
            count, seconds = totals.get(mount_id, (0, 0.0))
            before_count, before_seconds = self._last.get(mount_id, (0, 0.0))
            answered = int(count) - before_count
            latency = (seconds - before_seconds) / answered * 1000 if answered > 0 else 0.0
            series = self.series.get(mount_id)
            if series is None:
                series = self.series[mount_id] = deque([(0.0, 0.0)] * self.points,
                                                       maxlen=self.points)
            series.append((max(answered, 0) / self.interval, latency))
            self._last[mount_id] = (int(count), seconds)

    async def run(self) -> None:
        """Sample every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            self.sample()

    def mounts(self) -> dict[str, list[tuple[float, float]]]:
        """Each live mount's samples, oldest first (mounts sampled once and gone are left out)."""
        empty = [(0.0, 0.0)] * self.points
        return {mount_id: list(self.series.get(mount_id, empty))
                for mount_id in sorted(self.gateway.mounts)}
