"""A circuit breaker per replica: closed -> open -> half-open -> closed.

Closed: calls flow; outcomes are counted in a sliding time window of ten buckets (a call
costs two increments, not an entry per call). The breaker opens after
``failure_threshold`` consecutive failures, or when at least ``min_requests`` calls in the
window failed at ``failure_rate`` or more. Open: the replica is skipped for ``open_seconds``.
Half-open: up to ``half_open_probes`` calls go through; a success closes the breaker, a
failure opens it again.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CircuitState = Literal["closed", "open", "half_open"]

_BUCKETS = 10


class CircuitSettings(BaseModel):
    """Per-mount breaker settings (``[servers.<id>.circuit]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: false: calls are never refused by the breaker
    enabled: bool = True
    #: consecutive failures that open the circuit
    failure_threshold: int = Field(5, ge=1)
    #: failed fraction of calls in the window that opens it
    failure_rate: float = Field(0.5, gt=0, le=1)
    #: calls in the window before ``failure_rate`` counts
    min_requests: int = Field(10, ge=1)
    #: the window failures are counted in
    window_seconds: float = Field(30.0, gt=0)
    #: how long an open circuit refuses calls before probing
    open_seconds: float = Field(10.0, gt=0)
    #: calls let through to probe a half-open circuit
    half_open_probes: int = Field(1, ge=1)


class CircuitBreaker:
    """The breaker of one replica."""

    __slots__ = ("_bucket", "_bucket_ends", "_buckets", "_clock", "_consecutive", "_opened_at",
                 "_probes", "_span", "settings", "state")

    def __init__(
        self, settings: CircuitSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.state: CircuitState = "closed"
        self._clock = clock
        #: [start, calls, failures] per bucket of ``_span`` seconds, oldest first
        self._buckets: deque[list[float]] = deque()
        self._bucket: list[float] = [0.0, 0, 0]
        self._bucket_ends = -math.inf
        self._span = settings.window_seconds / _BUCKETS
        self._consecutive = 0
        self._opened_at = 0.0
        self._probes = 0

    def allows(self) -> bool:
        """True when a call may go to this replica now (does not consume a probe)."""
        if not self.settings.enabled or self.state == "closed":
            return True
        if self.state == "open":
            return self._clock() - self._opened_at >= self.settings.open_seconds
        return self._probes < self.settings.half_open_probes

    def before_call(self) -> None:
        """A call is about to be sent: an open breaker past its pause turns half-open."""
        if self.state == "open" and self.allows():
            self.state = "half_open"
            self._probes = 0
        if self.state == "half_open":
            self._probes += 1

    def record(self, ok: bool) -> None:
        """The outcome of a call (``ok`` False for timeouts and lost connections)."""
        if not self.settings.enabled:
            return
        if self.state == "half_open":
            if ok:
                self._close()
            else:
                self._open()
            return
        now = self._clock()
        if now >= self._bucket_ends:
            self._roll(now)
        bucket = self._bucket
        bucket[1] += 1
        if ok:
            self._consecutive = 0
            return
        bucket[2] += 1
        self._consecutive += 1
        if self.state == "closed" and self._tripped():
            self._open()

    def _roll(self, now: float) -> None:
        """Start a new bucket at ``now``, dropping those wholly outside the window."""
        buckets = self._buckets
        oldest_kept = now - self.settings.window_seconds - self._span  # a bucket's start
        while buckets and buckets[0][0] < oldest_kept:
            buckets.popleft()
        self._bucket = [now, 0, 0]
        buckets.append(self._bucket)
        self._bucket_ends = now + self._span

    def _tripped(self) -> bool:
        settings = self.settings
        if self._consecutive >= settings.failure_threshold:
            return True
        calls = sum(bucket[1] for bucket in self._buckets)
        if calls < settings.min_requests:
            return False
        failures = sum(bucket[2] for bucket in self._buckets)
        return failures / calls >= settings.failure_rate

    def _open(self) -> None:
        self.state = "open"
        self._opened_at = self._clock()
        self._probes = 0

    def _close(self) -> None:
        self.state = "closed"
        self._buckets.clear()
        self._bucket_ends = -math.inf
        self._consecutive = 0
        self._probes = 0
