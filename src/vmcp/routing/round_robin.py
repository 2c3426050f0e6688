"""The built-in ``round_robin`` balancer."""

from __future__ import annotations

from collections.abc import Sequence

from vmcp.routing.balancer import Balancer, R


class RoundRobin(Balancer):
    """Hands requests to the available replicas in turn, skipping unavailable ones.

    The position advances past the replica picked, so a replica that comes back is served
    again on its next turn. Affinity is ignored.
    """

    _next: int = 0

    def pick(self, replicas: Sequence[R], affinity: str | None = None) -> R | None:
        """Return the next available replica after the last one picked, or None."""
        count = len(replicas)
        for step in range(count):
            index = (self._next + step) % count
            if replicas[index].available:
                self._next = (index + 1) % count
                return replicas[index]
        return None
