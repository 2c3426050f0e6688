"""Isolated connections: a mount whose callers must not share one backend connection.

With ``isolation = "session"`` every front session gets a connection of its own (its own
process, for a stdio backend); with ``"persona"`` every persona does. Whatever such a
connection sends on its own initiative can then only belong to the callers it serves, and a
stateful server (memory, git, a browser) keeps one caller's state away from the others'.

The pool opens a connection on the first call that needs it, caps how many are open, closes
the longest idle one to make room, and closes those left unused for ``idle_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vmcp.protocol.errors import BACKEND_UNAVAILABLE, RpcError
from vmcp.transports.signin import SignInNeeded

if TYPE_CHECKING:
    from vmcp.registry.mount import Mount, Replica
    from vmcp.upstream.session import UpstreamEvents, UpstreamSession

log = logging.getLogger("vmcp.registry")


def isolation_key(kind: str, session_id: str, persona: str | None) -> str:
    """What an isolated connection of ``kind`` is keyed by for one caller."""
    return session_id if kind == "session" else (persona or "")


@dataclass(slots=True)
class _Entry:
    replica: Replica
    #: resolved when the connection is up (or failed to come up)
    started: asyncio.Future[None]
    last_used: float = field(default_factory=time.monotonic)


class IsolatedPool:
    """The isolated connections of one mount, keyed by session id or persona."""

    def __init__(self, mount: Mount) -> None:
        self.mount = mount
        #: ``"session"`` or ``"persona"``
        self.kind = mount.config.isolation
        self.settings = mount.config.pool
        self._entries: dict[str, _Entry] = {}
        self._serial = 0
        self._sweep: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def replicas(self) -> list[Replica]:
        """The replicas of every open connection."""
        return [entry.replica for entry in self._entries.values()]

    def live(self, key: str) -> Replica | None:
        """The connection serving ``key`` when it is up and taking work (marked as used)."""
        entry = self._entries.get(key)
        if entry is None or not entry.replica.available:
            return None
        entry.last_used = time.monotonic()
        return entry.replica

    async def acquire(
        self, key: str, events: UpstreamEvents, timeout: float, prepare: Any = None
    ) -> Replica:
        """The connection serving ``key``, opened (and its handshake done) if need be.

        :raises RpcError: every allowed connection is busy, or the backend did not start.
        :raises SignInNeeded: the connection waits for a person's sign-in (nothing was
            opened; a later call opens it once the grant exists).
        """
        entry = self._entries.get(key)
        if entry is not None and not entry.started.done():
            await asyncio.shield(entry.started)
            entry = self._entries.get(key)
        if entry is not None and entry.replica.available:
            entry.last_used = time.monotonic()
            return entry.replica
        if entry is not None:  # gone or broken: replace it
            self._close(key)
        self._make_room()
        self._serial += 1
        replica = self.mount.detached_replica(f"{self.mount.mount_id}~{self._serial}")
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._entries[key] = _Entry(replica, started)
        try:
            await self.mount.start_replica(replica, events, timeout, prepare,
                                           scope=(self.kind, key))
        except BaseException as exc:
            self._entries.pop(key, None)
            started.set_result(None)
            if isinstance(exc, Exception) and not isinstance(exc, (RpcError, SignInNeeded)):
                raise RpcError(BACKEND_UNAVAILABLE, f"Backend {self.mount.mount_id!r} could not "
                               f"start a connection for this caller: {exc}") from exc
            raise
        started.set_result(None)
        self._arm()
        return replica

    def _make_room(self) -> None:
        if len(self._entries) < self.settings.max_connections:
            return
        idle = [(entry.last_used, key) for key, entry in self._entries.items()
                if entry.started.done() and entry.replica.in_flight == 0]
        if not idle:
            raise RpcError(BACKEND_UNAVAILABLE, f"Backend {self.mount.mount_id!r} is at its "
                           f"limit of {self.settings.max_connections} isolated connections, "
                           "all of them busy")
        self._close(min(idle)[1])

    def release(self, key: str) -> None:
        """The caller behind ``key`` is gone: close its connection."""
        if key in self._entries:
            self._close(key)

    def discard(self, upstream: UpstreamSession) -> None:
        """A connection went away by itself: forget it (the next call opens a new one)."""
        for key, entry in list(self._entries.items()):
            if entry.replica.upstream is upstream:
                del self._entries[key]

    def _close(self, key: str) -> None:
        entry = self._entries.pop(key)
        entry.replica.state = "removed"
        upstream = entry.replica.upstream
        if upstream is not None:
            task = asyncio.get_running_loop().create_task(upstream.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    # -- idle reaping: one timer per pool, armed while connections are open -----------------

    def _arm(self) -> None:
        if self._sweep is None and self._entries:
            self._sweep = asyncio.get_running_loop().call_later(
                self.settings.idle_timeout / 2, self._reap)

    def _reap(self) -> None:
        self._sweep = None
        cutoff = time.monotonic() - self.settings.idle_timeout
        for key, entry in list(self._entries.items()):
            if (entry.started.done() and entry.last_used < cutoff
                    and entry.replica.in_flight == 0):
                log.info("mount %s: closing the idle connection of %s %s",
                         self.mount.mount_id, self.kind, key)
                self._close(key)
        self._arm()

    async def aclose(self) -> None:
        """Close every connection (the mount is stopping)."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for key in list(self._entries):
            self._close(key)
        closing = list(self._closing)
        with contextlib.suppress(Exception):
            await asyncio.gather(*closing, return_exceptions=True)
