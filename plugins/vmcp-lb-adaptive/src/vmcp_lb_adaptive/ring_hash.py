"""``ring_hash``: consistent hashing of front sessions onto replicas."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from typing import Any

from vmcp.routing.balancer import Balancer, R


def _point(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


class RingHash(Balancer):
    """Sends every call of one front session to the same replica.

    Each replica owns ``virtual_nodes`` points on a 64-bit ring; a session goes to the owner
    of the first point at or after its own hash. Adding or removing a replica moves only the
    sessions whose points it takes or gives back (about 1/N of them). When the owner is not
    available, the next available replica clockwise takes the call. Without an affinity key
    the call goes to the first available replica.
    """

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.virtual_nodes = int(settings.get("virtual_nodes", 160))
        self._members: tuple[str, ...] = ()
        self._points: list[int] = []
        self._owners: list[str] = []

    def _build(self, ids: tuple[str, ...]) -> None:
        ring = sorted(
            (_point(f"{replica_id}#{n}"), replica_id)
            for replica_id in ids for n in range(self.virtual_nodes)
        )
        self._points = [point for point, _ in ring]
        self._owners = [owner for _, owner in ring]
        self._members = ids

    def owner(self, replicas: Sequence[R], key: str) -> R | None:
        """The replica that owns ``key`` (whether available or not)."""
        return self._walk(replicas, key, available_only=False)

    def pick(self, replicas: Sequence[R], affinity: str | None = None) -> R | None:
        """The available replica owning (or next after) the session's point on the ring."""
        if affinity is None:
            return next((replica for replica in replicas if replica.available), None)
        return self._walk(replicas, affinity, available_only=True)

    def _walk(self, replicas: Sequence[R], key: str, available_only: bool) -> R | None:
        if not replicas:
            return None
        ids = tuple(sorted(replica.replica_id for replica in replicas))
        if ids != self._members:
            self._build(ids)
        by_id = {replica.replica_id: replica for replica in replicas}
        start = bisect.bisect_left(self._points, _point(key))
        count = len(self._points)
        tried: set[str] = set()
        for step in range(count):
            owner_id = self._owners[(start + step) % count]
            if owner_id in tried:
                continue
            tried.add(owner_id)
            replica = by_id[owner_id]
            if not available_only or replica.available:
                return replica
            if len(tried) == len(by_id):
                break
        return None
