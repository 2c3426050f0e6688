"""Liveness and readiness of the running gateway: what ``/livez``, ``/readyz`` and
``vmcp status`` report.

Live: the process serves requests at all (a front that can answer is live). Ready: the
gateway has started, every front listens, every mount has started or failed for good (none
is starting, and none that is down is being restarted), and the gateway is not stopping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmcp.registry.mount import Mount

#: replica states that will change by themselves: a mount with one (and not up) is pending
_PENDING_REPLICA = frozenset(("starting", "restarting"))


class Health:
    """The readiness inputs of one gateway and the verdict drawn from them."""

    def __init__(self, mounts: Mapping[str, Mount]) -> None:
        self._mounts = mounts
        self._started = asyncio.Event()
        #: front name -> where it listens (None until it does); set by whoever serves them
        self.fronts: dict[str, str | None] = {}
        #: set when the gateway was asked to stop (it drains, then closes)
        self.stop: asyncio.Event | None = None

    @property
    def started(self) -> bool:
        """True once the configured mounts were brought up (or failed)."""
        return self._started.is_set()

    @started.setter
    def started(self, value: bool) -> None:
        if value:
            self._started.set()
        else:
            self._started.clear()

    async def wait_started(self) -> None:
        """Return once the gateway has started (at once when it has)."""
        await self._started.wait()

    def pending_mounts(self) -> list[str]:
        """Ids of the mounts still on their way up."""
        return [
            mount_id for mount_id, mount in self._mounts.items()
            if mount.state == "starting" or (
                mount.state != "up" and any(r.state in _PENDING_REPLICA for r in mount.replicas))
        ]

    def problems(self) -> list[str]:
        """Why the gateway is not ready, in words fit for an unauthenticated probe (no
        mount ids); empty when it is ready."""
        problems = []
        if self.stop is not None and self.stop.is_set():
            problems.append("stopping")
        if not self.started:
            problems.append("starting")
        silent = sum(1 for where in self.fronts.values() if where is None)
        if silent:
            problems.append(f"{silent} front(s) not listening yet")
        pending = len(self.pending_mounts())
        if pending:
            problems.append(f"{pending} mount(s) starting")
        return problems

    def verdict(self) -> dict[str, Any]:
        """``{"live", "ready", "problems", "pending_mounts"}`` for ``vmcp status --json``."""
        problems = self.problems()
        return {"live": True, "ready": not problems, "problems": problems,
                "pending_mounts": self.pending_mounts()}
