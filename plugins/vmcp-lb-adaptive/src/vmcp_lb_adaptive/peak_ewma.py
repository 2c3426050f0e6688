"""``peak_ewma``: latency-aware balancing, as Finagle and Linkerd do it."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from vmcp.routing.balancer import Balancer, R, Replica
from vmcp_lb_adaptive.choices import two_choices


class _Ewma:
    __slots__ = ("stamp", "value")

    def __init__(self, value: float, stamp: float) -> None:
        self.value = value
        self.stamp = stamp


class PeakEwma(Balancer):
    """Picks, of two random replicas, the one with the lower expected cost.

    Each replica's latency is a moving average that jumps to any higher sample at once
    (the *peak*) and decays towards lower ones with time constant ``decay_seconds``; its cost
    is that latency times (in-flight + 1), so a replica that slows down or queues work loses
    traffic immediately and wins it back gradually. Failed calls count as slow.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, **settings: Any) -> None:
        super().__init__(**settings)
        self.decay = float(settings.get("decay_seconds", 10.0))
        self.default_latency = float(settings.get("default_latency", 0.0))
        self.failure_penalty = float(settings.get("failure_penalty", 1.0))
        self._clock = clock
        self._rng = random.Random(settings.get("seed"))
        self._latency: dict[str, _Ewma] = {}

    def latency(self, replica: Replica) -> float:
        """The replica's current peak-EWMA latency estimate (seconds)."""
        entry = self._latency.get(replica.replica_id)
        return entry.value if entry is not None else self.default_latency

    def cost(self, replica: Replica) -> float:
        """Latency estimate times the work it already has."""
        return self.latency(replica) * (replica.in_flight + 1)

    def pick(self, replicas: Sequence[R], affinity: str | None = None) -> R | None:
        """The cheaper of two random available replicas."""
        return two_choices(replicas, self.cost, self._rng)

    def observe(self, replica: Replica, latency: float, ok: bool) -> None:
        """Fold one call's latency into the replica's estimate."""
        sample = latency if ok else max(latency, self.failure_penalty)
        now = self._clock()
        entry = self._latency.get(replica.replica_id)
        if entry is None:
            self._latency[replica.replica_id] = _Ewma(sample, now)
            return
        if sample > entry.value:
            entry.value = sample
        else:
            weight = math.exp(-(now - entry.stamp) / self.decay) if self.decay > 0 else 0.0
            entry.value = entry.value * weight + sample * (1.0 - weight)
        entry.stamp = now
