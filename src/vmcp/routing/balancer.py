"""The balancer driver interface (entry-point group ``vmcp.balancers``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar


class Replica(Protocol):
    """What a balancer may read of a replica."""

    @property
    def replica_id(self) -> str:
        """A stable id, unique within its mount."""

    @property
    def available(self) -> bool:
        """True when the replica may take new work (up, not draining, circuit not open)."""

    @property
    def in_flight(self) -> int:
        """Requests sent to it and not yet answered."""


R = TypeVar("R", bound=Replica)


class Balancer(ABC):
    """Picks one replica of a mount for a request.

    Instances are created once per mount with the mount's ``balancer_settings`` table.
    """

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    @abstractmethod
    def pick(self, replicas: Sequence[R], affinity: str | None = None) -> R | None:
        """Return an available replica, or None when none is available.

        :param replicas: every replica of the mount, in a stable order.
        :param affinity: a key (the front session) whose calls should prefer one replica,
            for balancers that keep affinity; others may ignore it.
        """

    def observe(self, replica: Replica, latency: float, ok: bool) -> None:  # noqa: B027 - optional hook, empty on purpose
        """Learn from a finished call (latency in seconds). The default ignores it."""
