"""Rate limiting for the HTTP front: a token bucket per client session."""

from __future__ import annotations

import math
import time
from typing import Any

from vmcp.protocol.errors import BACKEND_UNAVAILABLE, RETRY_AFTER


class TokenBucket:
    """Allows ``rate`` requests a second on average, ``burst`` at once."""

    __slots__ = ("_at", "_burst", "_rate", "_tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._at = time.monotonic()

    def take(self) -> float:
        """Spend one token: 0.0 when there was one, else the seconds until there is."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


def retry_after(seconds: float) -> dict[str, str]:
    """A ``Retry-After`` header telling a client to wait at least ``seconds`` (whole seconds)."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def shed_wait(error: Any) -> float | None:
    """The seconds a JSON-RPC ``error`` the gateway shed load with asks the client to wait
    (its ``data.retryAfter``); None when it is no such refusal."""
    if not isinstance(error, dict) or error.get("code") != BACKEND_UNAVAILABLE:
        return None
    data = error.get("data")
    wait = data.get(RETRY_AFTER) if isinstance(data, dict) else None
    if isinstance(wait, int | float) and not isinstance(wait, bool):
        return wait
    return None
