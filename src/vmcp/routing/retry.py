"""Which requests may be repeated, and a budget so that retries cannot multiply load."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from tenacity import wait_exponential_jitter

from vmcp.protocol.errors import BACKEND_UNAVAILABLE, REQUEST_TIMEOUT

#: methods that never change a backend's state
SAFE_METHODS = frozenset({
    "tools/list", "prompts/list", "resources/list", "resources/templates/list",
    "resources/read", "prompts/get", "completion/complete",
})
#: error codes that say the replica failed (as opposed to the request being wrong)
REPLICA_FAILURES = frozenset({BACKEND_UNAVAILABLE, REQUEST_TIMEOUT})


class RetrySettings(BaseModel):
    """Per-mount retry settings (``[servers.<id>.retry]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: tries in all, the first included
    attempts: int = Field(3, ge=1, le=10)
    #: seconds before the first retry; grows exponentially
    initial_backoff: float = Field(0.05, ge=0)
    #: longest wait between tries
    max_backoff: float = Field(1.0, ge=0)
    #: retries allowed as a fraction of recent requests (plus ``min_retries_per_window``)
    budget_ratio: float = Field(0.2, ge=0, le=1)
    #: retries always allowed per budget window
    min_retries_per_window: int = Field(10, ge=0)
    #: the window the retry budget is counted in
    budget_window_seconds: float = Field(10.0, gt=0)
    #: tools that are safe to repeat, by exact name as the backend names them
    idempotent_tools: list[str] = Field(default_factory=list)


def backoff(initial: float, maximum: float) -> wait_exponential_jitter:
    """Exponential backoff from ``initial`` seconds up to ``maximum``, jittered by up to
    ``initial`` (tenacity's default jitter of a whole second would swamp short backoffs)."""
    return wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)


def may_retry(
    method: str, params: dict[str, Any], settings: RetrySettings, trusted_tools: frozenset[str]
) -> bool:
    """True when repeating this request cannot change the backend twice."""
    if method in SAFE_METHODS:
        return True
    if method == "tools/call":
        name = params.get("name")
        return name in settings.idempotent_tools or name in trusted_tools
    return False


class RetryBudget:
    """Allows retries up to a fraction of the requests seen in a sliding window."""

    __slots__ = ("_clock", "_requests", "_retries", "settings")

    def __init__(
        self, settings: RetrySettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()

    def _trim(self, now: float) -> None:
        horizon = now - self.settings.budget_window_seconds
        for stamps in (self._requests, self._retries):
            while stamps and stamps[0] < horizon:
                stamps.popleft()

    def record_request(self) -> None:
        """A first attempt was made."""
        now = self._clock()
        self._trim(now)
        self._requests.append(now)

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when it is exhausted."""
        now = self._clock()
        self._trim(now)
        allowed = self.settings.min_retries_per_window + int(
            len(self._requests) * self.settings.budget_ratio)
        if len(self._retries) >= allowed:
            return False
        self._retries.append(now)
        return True
