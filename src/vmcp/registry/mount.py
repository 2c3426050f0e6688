"""A mount: one configured server, its replicas, and the lists it offers."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Literal

from vmcp import __version__
from vmcp.config import MountConfig, expand_vars, python_executable
from vmcp.registry.catalog import LIST_KINDS, fetch_list
from vmcp.routing.balancer import Balancer
from vmcp.transports.base import Transport
from vmcp.upstream.session import UpstreamEvents, UpstreamSession

log = logging.getLogger("vmcp.registry")

MountState = Literal["starting", "up", "down", "failed"]


class Replica:
    """One running copy of a mount's backend."""

    __slots__ = ("draining", "replica_id", "upstream")

    def __init__(self, replica_id: str) -> None:
        self.replica_id = replica_id
        self.upstream: UpstreamSession | None = None
        self.draining = False

    @property
    def available(self) -> bool:
        """Up and taking new work."""
        upstream = self.upstream
        return upstream is not None and upstream.alive and not self.draining

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered."""
        return len(self.upstream.pending) if self.upstream is not None else 0


class Mount:
    """A mounted server as the gateway sees it."""

    def __init__(self, config: MountConfig, transport: Transport, balancer: Balancer) -> None:
        self.config = config
        self.transport = transport
        self.balancer = balancer
        self.replicas = [Replica(f"{config.id}-{n}") for n in range(config.replicas)]
        self.state: MountState = "starting"
        self.error: str | None = None
        self.catalog: dict[str, list[dict[str, Any]]] = {kind: [] for kind in LIST_KINDS}
        #: when each list was last read (monotonic seconds)
        self.fetched_at: dict[str, float] = dict.fromkeys(LIST_KINDS, 0.0)

    @property
    def mount_id(self) -> str:
        """The mount's id."""
        return self.config.id

    @property
    def primary(self) -> UpstreamSession | None:
        """The first live replica's session: the source of capabilities and lists."""
        for replica in self.replicas:
            if replica.available:
                return replica.upstream
        return None

    @property
    def capabilities(self) -> dict[str, Any]:
        """The backend's server capabilities ({} while down)."""
        upstream = self.primary
        return upstream.capabilities if upstream is not None else {}

    def pick(self, affinity: Replica | None = None) -> Replica | None:
        """The replica a new request goes to (sticking to ``affinity`` while it is up)."""
        if affinity is not None and affinity.available:
            return affinity
        if len(self.replicas) == 1:
            replica = self.replicas[0]
            return replica if replica.available else None
        return self.balancer.pick(self.replicas)

    def backend_env(self) -> dict[str, str]:
        """The environment a stdio replica is spawned with (``${VAR}`` expanded)."""
        env = dict(os.environ)
        env.setdefault("VMCP_PYTHON", python_executable())
        for key, value in self.config.env.items():
            env[key] = expand_vars(value, env)
        return env

    def backend_headers(self) -> dict[str, str]:
        """The headers a remote replica is sent (from configuration only)."""
        return {key: expand_vars(value) for key, value in self.config.headers.items()}

    async def start_replica(
        self,
        replica: Replica,
        events: UpstreamEvents,
        timeout: float,
        prepare: Any = None,
    ) -> None:
        """Connect one replica and perform its handshake."""
        env = self.backend_env()
        headers = self.backend_headers()
        if prepare is not None:
            prepare(mount=self.config, env=env, headers=headers)
        connection = await asyncio.wait_for(
            self.transport.connect(self.config, env, headers), timeout
        )
        upstream = UpstreamSession(self.mount_id, replica.replica_id, connection, events,
                                   client_version=__version__)
        try:
            await upstream.start(timeout)
        except BaseException:
            await upstream.aclose()
            raise
        replica.upstream = upstream

    async def refresh(self, kinds: tuple[str, ...], timeout: float) -> None:
        """Re-read some of the backend's lists."""
        upstream = self.primary
        if upstream is None:
            for kind in kinds:
                self.catalog[kind] = []
            return
        now = time.monotonic()
        results = await asyncio.gather(*(fetch_list(upstream, kind, timeout) for kind in kinds))
        for kind, items in zip(kinds, results, strict=True):
            self.catalog[kind] = items
            self.fetched_at[kind] = now

    def announces_changes(self, kind: str) -> bool:
        """True when the backend promised ``list_changed`` notifications for ``kind``."""
        capability = self.capabilities.get(LIST_KINDS[kind][2])
        return isinstance(capability, dict) and bool(capability.get("listChanged"))

    async def stop(self) -> None:
        """Close every replica."""
        self.state = "down"
        await asyncio.gather(
            *(r.upstream.aclose() for r in self.replicas if r.upstream is not None),
            return_exceptions=True,
        )
        for kind in self.catalog:
            self.catalog[kind] = []
