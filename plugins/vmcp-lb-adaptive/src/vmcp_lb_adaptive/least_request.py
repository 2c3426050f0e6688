"""``least_request``: power of two choices over in-flight counts."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from vmcp.routing.balancer import Balancer, R
from vmcp_lb_adaptive.choices import two_choices


class LeastRequest(Balancer):
    """Picks the replica with fewer requests in flight out of two random ones.

    Two random choices avoid the herding of "always the least loaded" while staying close
    to it (Mitzenmacher, *The Power of Two Choices in Randomized Load Balancing*).
    """

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._rng = random.Random(settings.get("seed"))

    def pick(self, replicas: Sequence[R], affinity: str | None = None) -> R | None:
        """The less loaded of two random available replicas."""
        return two_choices(replicas, lambda replica: replica.in_flight, self._rng)
