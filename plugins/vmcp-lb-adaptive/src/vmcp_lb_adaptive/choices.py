"""Power of two choices: sample two available replicas, keep the cheaper."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from vmcp.routing.balancer import R


def two_choices(
    replicas: Sequence[R], cost: Callable[[R], float], rng: random.Random
) -> R | None:
    """The cheaper of two distinct random available replicas (or the only one)."""
    available = [replica for replica in replicas if replica.available]
    if len(available) < 2:
        return available[0] if available else None
    first, second = rng.sample(available, 2)
    return first if cost(first) <= cost(second) else second
