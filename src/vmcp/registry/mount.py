"""A mount: one configured server, its replicas, and the lists it offers."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from vmcp import __version__
from vmcp.config import MountConfig, expand_vars, python_executable
from vmcp.registry.catalog import LIST_KINDS, fetch_list
from vmcp.registry.isolation import IsolatedPool
from vmcp.routing.balancer import Balancer
from vmcp.routing.circuit import CircuitBreaker
from vmcp.routing.retry import RetryBudget
from vmcp.transports.base import Transport
from vmcp.upstream.modern import ModernUpstreamSession
from vmcp.upstream.session import CLIENT_CAPABILITIES, UpstreamEvents, UpstreamSession

if TYPE_CHECKING:
    from vmcp.cache.layer import CacheLayer

log = logging.getLogger("vmcp.registry")

MountState = Literal["starting", "up", "down", "failed"]
Era = Literal["auto", "legacy", "modern"]
ReplicaState = Literal["starting", "up", "down", "restarting", "failed", "removed"]


class Replica:
    """One running copy of a mount's backend."""

    __slots__ = ("breaker", "config", "draining", "healthy", "replica_id", "restarts", "state",
                 "upstream")

    def __init__(self, replica_id: str, config: MountConfig) -> None:
        self.replica_id = replica_id
        #: the configuration this replica connects with (its own URL when ``urls`` is set)
        self.config = config
        self.upstream: UpstreamSession | None = None
        self.state: ReplicaState = "starting"
        self.draining = False
        self.healthy = True
        self.breaker = CircuitBreaker(config.circuit)
        #: when it was restarted recently (monotonic), to tell a crash loop
        self.restarts: deque[float] = deque()

    @property
    def alive(self) -> bool:
        """Connected and past its handshake."""
        upstream = self.upstream
        return upstream is not None and upstream.alive

    @property
    def available(self) -> bool:
        """Taking new work: alive, healthy, not draining, circuit not open."""
        upstream = self.upstream
        breaker = self.breaker
        return (upstream is not None and upstream.closed_reason is None and self.healthy
                and not self.draining and (breaker.state == "closed" or breaker.allows()))

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered."""
        upstream = self.upstream
        return len(upstream.pending) if upstream is not None else 0

    def describe(self) -> dict[str, Any]:
        """State for ``vmcp info`` and ``vmcp status``."""
        return {
            "id": self.replica_id,
            "state": self.state,
            "healthy": self.healthy,
            "draining": self.draining,
            "circuit": self.breaker.state,
            "in_flight": self.in_flight,
        }


class Mount:
    """A mounted server as the gateway sees it."""

    def __init__(self, config: MountConfig, transport: Transport, balancer: Balancer) -> None:
        self.config = config
        self.transport = transport
        self.balancer = balancer
        #: True when the balancer wants to hear each call's latency and outcome
        self.observed = type(balancer).observe is not Balancer.observe
        self.replicas = [
            Replica(f"{config.id}-{n}", config.replica_config(n))
            for n in range(config.replica_count)
        ]
        self._next_replica = len(self.replicas)
        self.state: MountState = "starting"
        self.error: str | None = None
        self.catalog: dict[str, list[dict[str, Any]]] = {kind: [] for kind in LIST_KINDS}
        #: True while :attr:`catalog` holds remembered lists, not live ones (a warm start,
        #: or a backend that went away within its grace period)
        self.warm = False
        #: the backend's capabilities when its lists were last live
        self.warm_capabilities: dict[str, Any] = {}
        #: when each list was last read (monotonic seconds)
        self.fetched_at: dict[str, float] = dict.fromkeys(LIST_KINDS, 0.0)
        self.retry_budget = RetryBudget(config.retry)
        #: tools a trusted server annotates as read-only or idempotent (safe to retry)
        self.safe_tools: frozenset[str] = frozenset()
        #: calls waiting for an in-flight slot (load shedding)
        self.waiting: deque[Callable[[], None]] = deque()
        #: the gateway's cache, read through for lists (None: lists always come from the backend)
        self.cache: CacheLayer | None = None
        #: the per-session or per-persona connections of an isolated mount (None: shared);
        #: the replicas above then serve the lists and health, the pool serves the calls
        self.pool = IsolatedPool(self) if config.isolation != "shared" else None
        #: the client capabilities its replicas declare to the backend
        self.client_capabilities: dict[str, Any] = CLIENT_CAPABILITIES
        #: the era of a mount whose configuration sets none (``[gateway] backend_era``)
        self.default_era: Era = "auto"
        #: what an ``auto`` probe found ("legacy" or "modern"); later connections (replica
        #: restarts, more replicas, isolated connections) use it without probing again
        self.found_era: Literal["legacy", "modern"] | None = None

    @property
    def mount_id(self) -> str:
        """The mount's id."""
        return self.config.id

    @property
    def era(self) -> Era:
        """The era the next connection speaks: configured, or found by an earlier probe."""
        return self.found_era or self.config.era or self.default_era

    @property
    def primary(self) -> UpstreamSession | None:
        """The first live replica's session: the source of capabilities and lists."""
        for replica in self.replicas:
            if replica.alive and not replica.draining:
                return replica.upstream
        for replica in self.replicas:
            if replica.alive:
                return replica.upstream
        return None

    @property
    def capabilities(self) -> dict[str, Any]:
        """The backend's server capabilities (remembered ones while warm, else {} while
        down)."""
        upstream = self.primary
        if upstream is not None:
            return upstream.capabilities
        return self.warm_capabilities if self.warm else {}

    @property
    def in_flight(self) -> int:
        """Requests in flight over every replica (and isolated connection)."""
        total = sum(replica.in_flight for replica in self.replicas)
        return total if self.pool is None else total + sum(
            replica.in_flight for replica in self.pool.replicas)

    def pick(
        self, session_key: str, sticky: Replica | None = None,
        exclude: frozenset[Replica] | set[Replica] = frozenset(),
    ) -> Replica | None:
        """The replica a request goes to, or None when none is available."""
        if sticky is not None and sticky.available and sticky not in exclude:
            return sticky
        replicas = self.replicas
        if exclude:
            replicas = [r for r in replicas if r not in exclude] or replicas
        if len(replicas) == 1:
            replica = replicas[0]
            return replica if replica.available else None
        return self.balancer.pick(replicas, session_key)

    def unavailable_reason(self) -> str:
        """Why no replica can take a call, for the error a client gets."""
        if all(r.alive and not r.breaker.allows() for r in self.replicas):
            return f"every replica of mount {self.mount_id!r} has its circuit open"
        if all(r.draining for r in self.replicas):
            return f"every replica of mount {self.mount_id!r} is draining"
        return f"Backend {self.mount_id!r} is unavailable" + (
            f": {self.error}" if self.error else "")

    def timeout_for(self, method: str, default: float) -> float:
        """The timeout of ``method`` on this mount."""
        config = self.config
        return config.method_timeouts.get(method) or config.timeout or default

    def detached_replica(self, replica_id: str) -> Replica:
        """A replica that is not one of :attr:`replicas` (an isolated connection)."""
        return Replica(replica_id, self.config.replica_config(0))

    def connections(self) -> list[UpstreamSession]:
        """Every live backend connection of the mount, isolated ones included."""
        replicas = self.replicas if self.pool is None else [*self.replicas, *self.pool.replicas]
        return [r.upstream for r in replicas if r.upstream is not None and r.upstream.alive]

    def add_replica(self) -> Replica:
        """A new replica slot (started by the caller)."""
        replica = Replica(f"{self.mount_id}-{self._next_replica}", self.config.replica_config(0))
        self._next_replica += 1
        self.replicas.append(replica)
        return replica

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
        connected: Callable[[], None] | None = None,
        scope: tuple[str, str] | None = None,
    ) -> None:
        """Connect one replica and perform its handshake; ``connected`` is called when the
        connection attempt is over (a stdio backend spawned, or failed), before the handshake.
        ``scope`` names the one session or persona an isolated connection serves."""
        env = self.backend_env()
        headers = self.backend_headers()
        if prepare is not None:
            prepare(mount=self.config, env=env, headers=headers)
        replica.state = "starting"
        try:
            connection = await asyncio.wait_for(
                self.transport.connect(replica.config, env, headers, scope), timeout
            )
        finally:
            if connected is not None:
                connected()
        era = self.era
        kind = UpstreamSession if era == "legacy" else ModernUpstreamSession
        upstream = kind(self.mount_id, replica.replica_id, connection, events,
                        client_version=__version__, capabilities=self.client_capabilities,
                        **({"probe": True} if era == "auto" else {}))
        upstream.scope = scope
        try:
            await upstream.start(timeout)
        except BaseException as exc:
            await upstream.aclose()
            replica.state = "down"
            if connection.sign_in is not None and isinstance(exc, Exception):
                raise connection.sign_in from exc  # the handshake found the grant refused
            raise
        if era == "auto":
            self.found_era = "modern" if upstream.modern else "legacy"
            log.info("mount %s: the backend speaks the %s era", self.mount_id, self.found_era)
        replica.upstream = upstream
        replica.state = "up"
        replica.healthy = True
        replica.breaker = CircuitBreaker(self.config.circuit)

    async def refresh(self, kinds: tuple[str, ...], timeout: float) -> None:
        """Re-read some of the backend's lists."""
        upstream = self.primary
        if upstream is None:
            for kind in kinds:
                self.catalog[kind] = []
            return
        now = time.monotonic()
        results = await asyncio.gather(
            *(self._read_list(upstream, kind, timeout) for kind in kinds))
        for kind, items in zip(kinds, results, strict=True):
            self.catalog[kind] = items
            self.fetched_at[kind] = now
        if "tools" in kinds and self.config.trusted:
            self.safe_tools = frozenset(
                tool["name"] for tool in self.catalog["tools"]
                if isinstance(tool.get("annotations"), dict)
                and (tool["annotations"].get("readOnlyHint")
                     or tool["annotations"].get("idempotentHint")))

    async def _read_list(
        self, upstream: UpstreamSession, kind: str, timeout: float
    ) -> list[dict[str, Any]]:
        """One whole list: from the cache when it has it, else from the backend."""
        if self.cache is None:
            return await fetch_list(upstream, kind, timeout)
        hints: dict[str, Any] = {}
        return await self.cache.list_items(self.config, LIST_KINDS[kind][0],
                                           self.announces_changes(kind),
                                           lambda: fetch_list(upstream, kind, timeout, hints),
                                           hints)

    def announces_changes(self, kind: str) -> bool:
        """True when the backend promised ``list_changed`` notifications for ``kind``."""
        capability = self.capabilities.get(LIST_KINDS[kind][2])
        return isinstance(capability, dict) and bool(capability.get("listChanged"))

    async def stop(self) -> None:
        """Close every replica (none of them is restarted)."""
        self.state = "down"
        for replica in self.replicas:
            replica.state = "removed"
        if self.pool is not None:
            await self.pool.aclose()
        await asyncio.gather(
            *(r.upstream.aclose() for r in self.replicas if r.upstream is not None),
            return_exceptions=True,
        )
        for kind in self.catalog:
            self.catalog[kind] = []
        self.warm = False

    def describe(self) -> dict[str, Any]:
        """State for ``vmcp info`` and ``vmcp status``."""
        return {
            "id": self.mount_id,
            "state": self.state,
            "error": self.error,
            "in_flight": self.in_flight,
            "replicas": [replica.describe() for replica in self.replicas],
            **({"isolation": self.config.isolation, "isolated_connections": len(self.pool)}
               if self.pool is not None else {}),
        }
