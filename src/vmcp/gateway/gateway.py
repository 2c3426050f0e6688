"""The gateway: mounts, the namespace over them, front sessions, and the relay between them.

It is the :class:`~vmcp.transports.base.FrontHost` every front transport serves, and the
:class:`~vmcp.upstream.session.UpstreamEvents` listener of every backend connection: what a
backend sends on its own initiative (progress, logs, list changes, resource updates,
sampling, elicitation, roots, task status) is routed here to the one front session it
belongs to.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vmcp import headstart
from vmcp.auth.base import AuthError, AuthProvider, Principal
from vmcp.auth.metadata import resource_metadata_url, www_authenticate
from vmcp.cache.layer import CacheLayer
from vmcp.cluster import SharedState, open_shared
from vmcp.cluster.record import ID_SEPARATOR
from vmcp.config import MountConfig, VmcpConfig, vmcp_home
from vmcp.gateway.access import PersonaAccess, personas_in_play
from vmcp.gateway.approvals import Approvals
from vmcp.gateway.bridge import Bridge
from vmcp.gateway.dispatch import Dispatcher
from vmcp.gateway.frontsnapshot import SnapshotKeeper
from vmcp.gateway.health import Health
from vmcp.gateway.listen import Listens
from vmcp.gateway.modern import ModernAdapter
from vmcp.gateway.namespace import Namespace
from vmcp.gateway.pinning import Pinning, PinStore
from vmcp.gateway.remote import Remote
from vmcp.gateway.replay import replay_safe
from vmcp.gateway.session import FrontSession
from vmcp.gateway.stateless import StatelessEntry
from vmcp.gateway.tasks_remote import RemoteTasks
from vmcp.gateway.toolsearch import ToolSearch
from vmcp.gateway.warmcatalog import WarmCatalog
from vmcp.memrelease import MemoryRelease, compact
from vmcp.plugins import PluginError, get_plugin_manager, load_driver
from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import BACKEND_UNAVAILABLE, INTERNAL_ERROR, INVALID_PARAMS, RpcError
from vmcp.registry.catalog import CHANGED_KINDS, LIST_KINDS
from vmcp.registry.mount import Mount, Replica
from vmcp.registry.supervisor import Supervisor
from vmcp.routing.middleware import all_visible, chain
from vmcp.routing.request import LOG_LEVELS, Request, Sink
from vmcp.routing.router import Router
from vmcp.transports.base import FrontPeer, JsonMessage, Transport
from vmcp.upstream.session import CLIENT_CAPABILITIES, NO_RELATION, UpstreamSession

log = logging.getLogger("vmcp.gateway")

_KIND_NOTIFICATION = {
    "tools": "notifications/tools/list_changed",
    "prompts": "notifications/prompts/list_changed",
    "resources": "notifications/resources/list_changed",
    "resource_templates": "notifications/resources/list_changed",
}
RELATED_TASK = "io.modelcontextprotocol/related-task"


@dataclass(slots=True)
class TaskEntry:
    """A task a backend created for one front session."""

    session: Sink
    #: the id of the session that created it (the only one that may use it)
    session_id: str
    mount_id: str
    upstream: UpstreamSession
    backend_task_id: str


@dataclass(slots=True)
class _Opening:
    """What :meth:`Gateway.start` opens while the backends start up."""

    #: resolved once every backend was spawned (or one reads its lists): open now
    go: asyncio.Future[None]
    #: resolved once the cache is open
    opened: asyncio.Future[None]
    #: replicas whose connection attempt is not over yet
    connecting: int = 0

    def connected(self) -> None:
        """One more replica spawned (or failed to)."""
        self.connecting -= 1
        if self.connecting <= 0:
            _resolve(self.go)


class Gateway:
    """The running gateway."""

    def __init__(
        self,
        config: VmcpConfig,
        default_principal: Principal | None = None,
        client_capabilities: dict[str, Any] = CLIENT_CAPABILITIES,
    ) -> None:
        self.config = config
        #: what its mounts declare to backends: ``{}`` when no front client can serve a
        #: backend's sampling, elicitation or roots requests (``vmcp call``, ``vmcp tools``)
        self.client_capabilities = client_capabilities
        #: the principal of a session opened without one (stdio; ``vmcp start --persona``)
        self.default_principal = default_principal
        self.mounts: dict[str, Mount] = {}
        #: what the fronts' ``/readyz`` and ``vmcp status`` report
        self.health = Health(self.mounts)
        self.namespace = Namespace((), config.gateway.separator)
        self.tool_search = ToolSearch(self)
        self.pinning = Pinning(PinStore(vmcp_home() / "pins"))
        self.approvals = Approvals(self)
        self.warm = WarmCatalog(self)
        #: keeps what the stdio client is first shown, for the next fast start (None
        #: unless this process was entered as a stdio ``vmcp start``)
        self.front_snapshot = SnapshotKeeper.of_launch(self)
        self.sessions: dict[str, FrontSession] = {}
        #: gives memory back once a load of sessions is gone (None: ``release_memory`` off);
        #: fronts may add their own tables to rebuild (``before_release``)
        self.memory = MemoryRelease() if config.gateway.release_memory else None
        self._sessions_watch = None
        if self.memory is not None:
            self._sessions_watch = self.memory.watch()
            self.memory.before_release(lambda: compact(self.sessions))
        #: the stateless 2026-07-28 requests being served (HTTP POSTs), for draining
        self.stateless: set[StatelessEntry] = set()
        #: the sessions shared with other instances (``[cluster]``), by the id they share
        self.shared_sessions: dict[str, FrontSession] = {}
        #: gateway progress token -> (the request, the client's own token)
        self.progress: dict[int, tuple[Request, Any]] = {}
        #: (upstream, backend request id) -> (session, client-side id) of relayed requests
        self.reverse: dict[tuple[UpstreamSession, Any], tuple[FrontSession, int | str]] = {}
        self.tasks: dict[str, TaskEntry] = {}
        self._task_ids: dict[tuple[UpstreamSession, str], str] = {}
        self._elicitations: dict[tuple[UpstreamSession, str], tuple[FrontSession, str]] = {}
        self.subscribers: dict[tuple[str, str], set[FrontSession]] = {}
        self._counter = itertools.count(1)
        self._backend_log_rank: int | None = None
        #: mounts already warned about messages that could not be attributed
        self._ambiguity_warned: set[str] = set()
        self._transports: dict[str, Transport] = {}
        self._background: set[asyncio.Task[Any]] = set()
        #: re-reads of stale lists in progress, shared by concurrent list requests
        self._refreshing: dict[tuple[str, ...], asyncio.Task[None]] = {}
        self._pm = get_plugin_manager()
        self.middleware = chain(
            [m for m in self._pm.hook.vmcp_request_middleware(gateway=self) if m is not None])
        #: persona enforcement; None when no connection can carry a persona
        self.access = (_persona_access(self)
                       if personas_in_play(config, default_principal) else None)
        self._plugin_filters = [
            f for f in self._pm.hook.vmcp_visibility_filter(gateway=self) if f is not None]
        self.visible = all_visible(
            ([self.access.visible] if self.access is not None else []) + self._plugin_filters)
        self._auth: AuthProvider | None = None
        self.supervisor = Supervisor(self)
        self.router = Router(self)
        self.dispatch = Dispatcher(self)
        #: the 2026-07-28 adapter, its bridge to backends' requests, and its listens
        self.modern = ModernAdapter(self)
        self.bridge = Bridge(self, config.gateway.state_key)
        self.listens = Listens(self)
        #: request counting (vmcp.monitoring.metrics.GatewayMetrics); None unless
        #: ``[monitoring] metrics_port`` is set
        self.metrics: Any = None
        #: the cache layer, opened by start(); None when caching is off or its driver is missing
        self.cache: CacheLayer | None = None
        #: what start() opens while the backends start (None once it has)
        self._opening: _Opening | None = None
        #: the state shared with the deployment's other instances; None without ``[cluster]``
        self.cluster: SharedState | None = _open_cluster(config)
        #: the tasks of sessions served by several instances; None without ``[cluster]``
        self.remote_tasks: RemoteTasks | None = None
        if self.cluster is not None:
            remote = Remote(self.cluster, self.spawn)
            self.bridge.join(remote)
            self.remote_tasks = RemoteTasks(self, remote)

    # -- FrontHost ------------------------------------------------------------------------

    @property
    def auth_required(self) -> bool:
        """True when the configured auth driver really checks credentials."""
        return not self._auth_provider().loopback_only

    def _auth_provider(self) -> AuthProvider:
        if self._auth is None:
            settings = self.config.auth.model_dump()
            self._auth = load_driver("auth", settings.pop("driver"))(**settings)
        return self._auth

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Authenticate a remote connection with the configured auth driver.

        :raises AuthError: refused; its ``www_authenticate`` is the challenge to send.
        """
        try:
            principal: Principal | None = await self._auth_provider().authenticate(headers)
            if principal is None:
                raise AuthError("not authenticated")
        except AuthError as exc:
            if exc.www_authenticate is None:
                exc.www_authenticate = www_authenticate(
                    resource_metadata_url(self.config.auth.resource, headers))
            raise
        return principal

    def effective_principal(self, principal: Principal | None) -> Principal | None:
        """The principal a session acts as: the default one when it brings none, with
        ``[gateway] default_persona`` when it has no persona of its own."""
        principal = principal or self.default_principal
        default = self.config.gateway.default_persona
        if default and (principal is None or principal.persona is None):
            return Principal(principal.name if principal is not None else "local", default)
        return principal

    def readiness(self) -> list[str]:
        """Why the gateway is not ready to serve (empty: ready); see :class:`Health`. With a
        cluster, an unreachable shared state is one reason."""
        problems = self.health.problems()
        if self.cluster is not None and (problem := self.cluster.problem()) is not None:
            problems.append(problem)
        return problems

    def replay_safe(self, message: JsonMessage) -> bool:
        """Whether a load balancer may run request ``message`` again on another instance
        (see :mod:`vmcp.gateway.replay`)."""
        return replay_safe(self, message)

    @property
    def draining(self) -> bool:
        """True once the gateway was asked to stop (it drains, then closes)."""
        stop = self.health.stop
        return stop is not None and stop.is_set()

    async def started(self) -> None:
        """Return once the gateway has started (see :meth:`Health.wait_started`), or at once
        while it serves from the warm catalog."""
        if not self.warm.opened:
            await self.health.wait_started()

    def open_session(self, peer: FrontPeer, principal: Principal | None = None,
                     front: str | None = None) -> FrontSession:
        """Start a session for a new front connection (of the front transport ``front``)."""
        principal = self.effective_principal(principal)
        session = FrontSession(self, peer, principal, secrets.token_hex(8))
        if front == "stdio":
            session.observer = self.front_snapshot
        self.sessions[session.session_id] = session
        return session

    def open_stateless(self, peer: FrontPeer, principal: Principal | None = None
                       ) -> StatelessEntry:
        """Take in a 2026-07-28 request that arrives with no connection state (a
        Streamable HTTP POST): its messages go to ``peer``."""
        entry = StatelessEntry(self, peer, self.effective_principal(principal))
        self.stateless.add(entry)
        return entry

    async def session_closed(self, session: FrontSession) -> None:
        """Release what a departed session held."""
        self.sessions.pop(session.session_id, None)
        if self._sessions_watch is not None:
            self._sessions_watch.note(len(self.sessions))
        if session.shared_id is not None and self.shared_sessions.get(
                session.shared_id) is session:
            del self.shared_sessions[session.shared_id]
        for token in [t for t, entry in self.progress.items()
                      if entry[0].caller.session_id == session.session_id]:
            del self.progress[token]
        for task_id in [t for t, entry in self.tasks.items() if entry.session is session]:
            entry = self.tasks.pop(task_id)
            self._task_ids.pop((entry.upstream, entry.backend_task_id), None)
        for key in [k for k, entry in self._elicitations.items() if entry[0] is session]:
            del self._elicitations[key]
        for route in list(session.subscriptions):
            with contextlib.suppress(RpcError):
                await self.unsubscribe(session, route)
        for mount in self.mounts.values():
            if mount.pool is not None and mount.pool.kind == "session":
                mount.pool.release(session.session_id)
        if session.log_rank is not None:
            self.log_levels_changed()

    # -- mounts ---------------------------------------------------------------------------

    def transport(self, name: str) -> Transport:
        """The (single) instance of a transport driver."""
        transport = self._transports.get(name)
        if transport is None:
            transport = load_driver("transports", name)()
            self._transports[name] = transport
        return transport

    async def start(self, alongside: Callable[[], Awaitable[None]] | None = None) -> None:
        """Mount every configured server, then tell plugins the gateway is up.

        The backends are spawned first. The cache opens, then ``alongside`` runs (the
        metrics endpoint of ``vmcp start``), while they start up: once every backend was
        spawned, and before any mount reads its lists (through the cache).

        :raises Exception: what ``alongside`` raised, once the mounts are up or failed.
        """
        loop = asyncio.get_running_loop()
        opening = self._opening = _Opening(loop.create_future(), loop.create_future())
        services = loop.create_task(self._open_services(opening, alongside))
        try:
            try:
                await self.start_mounts()
            finally:
                headstart.release()  # what the head start spawned and no mount took
            _resolve(opening.go)  # nothing was spawned (or a count fell short)
            await services
        except BaseException:
            services.cancel()
            raise
        finally:
            self._opening = None
        if self.access is not None:
            self.spawn(self.access.watch())
        self.health.started = True
        await self._call_hook(self._pm.hook.vmcp_gateway_started)

    def _create_mount(self, mount_config: MountConfig) -> Mount:
        transport = self.transport(mount_config.transport)
        balancer = load_driver("balancers", mount_config.balancer)(
            **mount_config.balancer_settings)
        mount = Mount(mount_config, transport, balancer)
        mount.cache = self.cache
        mount.client_capabilities = self.client_capabilities
        mount.default_era = self.config.gateway.backend_era
        self.mounts[mount.mount_id] = mount
        return mount

    async def start_mounts(self) -> None:
        """Start every enabled mount concurrently; a failing one is logged, not fatal."""
        mounts = []
        for mount_config in self.config.servers.values():
            if not mount_config.enabled:
                continue
            try:
                mounts.append(self._create_mount(mount_config))
            except Exception as exc:
                log.error("mount %s: %s", mount_config.id, exc)
        if self._opening is not None:
            self._opening.connecting += sum(len(m.replicas) for m in mounts)
        if self.warm.warm_up(mounts):
            self._rebuild()
            await self.warm.open()  # the fronts may open now, on the remembered lists
        remembered = self.namespace
        await self.warm.bring_up(mounts, self._bring_up)
        await self._refuse_collisions()
        self._rebuild()
        self.warm.announce(remembered, self.namespace)
        for mount in mounts:
            if mount.state == "up":
                await self._call_hook(self._pm.hook.vmcp_server_mounted, mount_id=mount.mount_id)

    async def add_mount(self, mount_config: MountConfig) -> Mount:
        """Mount a server on the running gateway; clients get ``list_changed``.

        :raises ValueError: the id is already mounted.
        :raises PluginError: its transport or balancer is not installed.
        """
        if mount_config.id in self.mounts:
            raise ValueError(f"mount {mount_config.id!r} is already mounted")
        mount = self._create_mount(mount_config)
        await self._bring_up(mount)
        await self._refuse_collisions()
        self._rebuild()
        if mount.state == "up":
            self.broadcast_list_changed(
                [k for k, items in mount.catalog.items() if items], mount.mount_id)
            await self._call_hook(self._pm.hook.vmcp_server_mounted, mount_id=mount.mount_id)
        return mount

    async def remove_mount(self, mount_id: str) -> None:
        """Unmount a server from the running gateway; clients get ``list_changed``.

        Calls in flight to it get an error at once; sessions stay connected.

        :raises KeyError: nothing is mounted under that id.
        """
        mount = self.mounts.pop(mount_id)
        had = [kind for kind, items in mount.catalog.items() if items]
        for route in [r for r in self.subscribers if r[0] == mount_id]:
            for session in self.subscribers.pop(route):
                session.subscriptions.discard(route)
        for task_id in [t for t, entry in self.tasks.items() if entry.mount_id == mount_id]:
            entry = self.tasks.pop(task_id)
            self._task_ids.pop((entry.upstream, entry.backend_task_id), None)
        await mount.stop()
        if self.cache is not None:
            await self.cache.mount_changed(mount_id)
        self._rebuild()
        self.broadcast_list_changed(had, mount_id)
        await self._call_hook(self._pm.hook.vmcp_server_unmounted, mount_id=mount_id)

    async def apply_config(self, config: VmcpConfig) -> dict[str, list[str]]:
        """Switch to a new configuration: mounts that left, came or changed are unmounted,
        mounted or remounted; the others keep running untouched."""
        old = self.config.servers
        new = {k: v for k, v in config.servers.items() if v.enabled}
        removed = [k for k in self.mounts if k not in new]
        changed = [k for k in self.mounts if k in new and new[k] != old.get(k)]
        added = [k for k in new if k not in self.mounts]
        if config.auth != self.config.auth:
            self._auth = None  # the next authentication uses the new [auth] settings
        self.config = config
        self._install_access()
        for mount_id in removed + changed:
            await self.remove_mount(mount_id)
        for mount_id in changed + added:
            try:
                await self.add_mount(new[mount_id])
            except Exception as exc:
                log.error("mount %s: %s", mount_id, exc)
        return {"removed": removed, "changed": changed, "added": added}

    def require_personas(self) -> None:
        """Install persona enforcement now, for a session that brings a persona of its own
        where none was in play (``vmcp connect --persona`` to a gateway without auth)."""
        self._install_access(force=True)

    def _install_access(self, force: bool = False) -> None:
        """Install persona enforcement when a new configuration puts personas in play."""
        if self.access is not None or not (
                force or personas_in_play(self.config, self.default_principal)):
            return
        self.access = _persona_access(self)
        self.access.catalog_changed()
        self.visible = all_visible([self.access.visible, *self._plugin_filters])
        self.spawn(self.access.watch())

    async def _refuse_collisions(self) -> None:
        """Fail every mount whose unprefixed names collide with an earlier mount's.

        Checked in mount order once mounts are up, so the later mount in the configuration
        is the one refused, however fast each backend started.
        """
        probe = self._build_namespace()
        for mount_id, problem in probe.collisions.items():
            mount = self.mounts[mount_id]
            log.error("mount %s refused: %s", mount_id, problem)
            await mount.stop()
            mount.state = "failed"
            mount.error = problem

    def startup_timeout(self, mount: Mount) -> float:
        """How long one replica of ``mount`` may take to start."""
        return mount.config.startup_timeout or self.config.gateway.startup_timeout

    def prepare_hook(self) -> Any:
        """The ``vmcp_backend_prepare`` hook, called before every backend start."""
        return self._pm.hook.vmcp_backend_prepare

    async def _bring_up(self, mount: Mount) -> None:
        timeout = self.startup_timeout(mount)
        prepare = self.prepare_hook()
        opening = self._opening
        connected = opening.connected if opening is not None else None
        try:
            outcomes = await asyncio.gather(
                *(mount.start_replica(replica, self, timeout, prepare, connected)
                  for replica in mount.replicas),
                return_exceptions=True,
            )
            failures = [o for o in outcomes if isinstance(o, BaseException)]
            if len(failures) == len(outcomes):
                raise failures[0]
            for replica, outcome in zip(mount.replicas, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    log.warning("replica %s failed to start: %s", replica.replica_id,
                                _describe(outcome))
                    self.supervisor.replica_lost(mount, replica)
            if opening is not None:  # start(): lists are read through the cache
                _resolve(opening.go)
                await asyncio.shield(opening.opened)
            await mount.refresh(tuple(LIST_KINDS), timeout)
        except Exception as exc:
            reason = _describe(exc)
            log.error("mount %s failed to start: %s", mount.mount_id, reason)
            mount.error = reason
            await mount.stop()
            mount.state = "failed"
            self.warm.failed(mount)
            return
        mount.state = "up"
        self.warm.came_up(mount)
        for replica in mount.replicas:
            if replica.alive:
                self.supervisor.watch(mount, replica)
        log.info("mounted %s (%s)", mount.mount_id, mount.primary.server_info.get("name", "?")
                 if mount.primary else "?")

    async def replica_up(self, mount: Mount, replica: Replica) -> None:
        """A replica came back: watch it, and bring its mount's items back if it was down."""
        self.supervisor.watch(mount, replica)
        if self.metrics is not None:
            self.metrics.backend_restarted(mount.mount_id)
        upstream = replica.upstream
        if upstream is not None and self._backend_log_rank is not None and (
                "logging" in upstream.capabilities):
            upstream.forward("logging/setLevel", {"level": LOG_LEVELS[self._backend_log_rank]},
                             _ignore, self.config.gateway.request_timeout)
        if mount.state == "up":
            return
        if self.cache is not None:
            await self.cache.mount_changed(mount.mount_id)
        try:
            await mount.refresh(tuple(LIST_KINDS), self.startup_timeout(mount))
        except RpcError as exc:
            # Treat it as a failed start: close the replica and let the supervisor retry.
            log.warning("mount %s: reading lists after restart failed: %s", mount.mount_id,
                        exc.message)
            if replica.upstream is not None:
                await replica.upstream.aclose()
            self.supervisor.replica_lost(mount, replica)
            return
        mount.state = "up"
        mount.error = None
        self.warm.came_up(mount)
        self._rebuild()
        self.broadcast_list_changed(
            [kind for kind, items in mount.catalog.items() if items], mount.mount_id)
        await self._call_hook(self._pm.hook.vmcp_server_mounted, mount_id=mount.mount_id)

    async def stop(self) -> None:
        """Close every session and every backend."""
        await self.supervisor.stop()
        self.warm.close()
        await self._call_hook(self._pm.hook.vmcp_gateway_stopping)
        for session in list(self.sessions.values()):
            await session.aclose()
        for entry in list(self.stateless):
            await entry.aclose()
        if self.memory is not None:
            self.memory.close()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*(m.stop() for m in self.mounts.values()), return_exceptions=True)
        if self.cache is not None:
            await self.cache.aclose()
        if self.cluster is not None:
            await self.cluster.aclose()

    async def _open_services(
        self, opening: _Opening, alongside: Callable[[], Awaitable[None]] | None
    ) -> None:
        """What start() opens while the backends start: the cache (then given to every
        mount), then ``alongside``."""
        await opening.go
        if self.front_snapshot is not None:  # for the next start's head start
            self.front_snapshot.spawned()
        await self._open_cache()
        if self.cluster is not None:
            await self.cluster.start()
        for mount in self.mounts.values():
            mount.cache = self.cache
        _resolve(opening.opened)
        if alongside is not None:
            await alongside()

    async def _open_cache(self) -> None:
        """Open the ``[cache]`` layer; a missing or broken driver leaves the gateway uncached."""
        try:
            cache = CacheLayer.from_config(self.config)
            if cache is not None:
                await cache.start(self._lists_changed_elsewhere)
        except Exception as exc:
            log.error("cache disabled: %s", exc)
            return
        self.cache = cache

    def _lists_changed_elsewhere(self, mount_id: str, kinds: tuple[str, ...]) -> None:
        """Another gateway sharing the cache saw lists of ``mount_id`` change: re-read them."""
        mount = self.mounts.get(mount_id)
        if mount is not None and mount.state == "up":
            self.spawn(self._refresh(mount, kinds, announce=False))

    def _build_namespace(self) -> Namespace:
        settings = self.config.gateway
        return Namespace(self.mounts.values(), settings.separator, settings.max_tool_name,
                         self.pinning.check(self.mounts.values()))

    def approve_tools(self, mount_id: str, tool: str | None = None) -> list[str]:
        """Pin the changed definitions of ``mount_id``'s tools (or of one); the names pinned."""
        names = self.pinning.store.approve(mount_id, tool)
        if names:
            self._rebuild()
            self.broadcast_list_changed(("tools",), mount_id)
        return names

    def _rebuild(self) -> None:
        self.namespace = self._build_namespace()
        self.warm.save(self.mounts.values())
        for mount_id, problem in self.namespace.collisions.items():
            log.warning("mount %s: %s; the later item is hidden", mount_id, problem)
        if self.access is not None:
            self.access.catalog_changed()

    async def _call_hook(self, hook: Any, **kwargs: Any) -> None:
        for outcome in hook(gateway=self, **kwargs):
            if isinstance(outcome, Awaitable):
                try:
                    await outcome
                except Exception:
                    log.exception("plugin hook %s failed", hook.name)

    def front_capabilities(self) -> dict[str, Any]:
        """The union of what the mounted backends offer, as the gateway can serve it."""
        caps: dict[str, Any] = {"logging": {}}
        for mount in self.mounts.values():
            backend = mount.capabilities
            for kind in ("tools", "prompts"):
                if kind in backend:
                    caps[kind] = {"listChanged": True}
            if "resources" in backend:
                resources = caps.setdefault("resources", {"listChanged": True})
                if isinstance(backend["resources"], dict) and backend["resources"].get("subscribe"):
                    resources["subscribe"] = True
            if "completions" in backend:
                caps["completions"] = {}
            tasks = backend.get("tasks")
            if isinstance(tasks, dict):
                caps["tasks"] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
        return caps

    # -- lists ----------------------------------------------------------------------------

    def stale_kinds(self, kind: str) -> bool:
        """True when a mount that does not announce changes to ``kind`` is due a re-read."""
        ttl = self.config.gateway.list_ttl
        now = time.monotonic()
        return any(
            m.state == "up" and not m.announces_changes(kind) and now - m.fetched_at[kind] > ttl
            for m in self.mounts.values()
        )

    async def refresh_stale(self, kind: str) -> None:
        """Re-read ``kind`` from every mount that is due, then rebuild the namespace once.

        Concurrent callers share one re-read.
        """
        kinds = ("resources", "resource_templates") if kind.startswith("resource") else (kind,)
        task = self._refreshing.get(kinds)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._refresh_due(kind, kinds))
            self._refreshing[kinds] = task
            task.add_done_callback(lambda _: self._refreshing.pop(kinds, None))
        await asyncio.shield(task)

    async def _refresh_due(self, kind: str, kinds: tuple[str, ...]) -> None:
        ttl = self.config.gateway.list_ttl
        now = time.monotonic()
        due = [m for m in self.mounts.values() if m.state == "up"
               and not m.announces_changes(kind) and now - m.fetched_at[kind] > ttl]
        changes = await asyncio.gather(*(self._reread(m, kinds) for m in due))
        self._rebuild()
        for mount, changed in zip(due, changes, strict=True):
            if changed:
                self.broadcast_list_changed(changed, mount.mount_id)

    async def _reread(self, mount: Mount, kinds: tuple[str, ...]) -> list[str]:
        """Re-read some lists of one mount; the kinds whose content changed."""
        before = {kind: mount.catalog[kind] for kind in kinds}
        try:
            await mount.refresh(kinds, self.config.gateway.request_timeout)
        except RpcError as exc:
            log.warning("mount %s: re-reading %s failed: %s", mount.mount_id, kinds, exc.message)
            return []
        return [kind for kind in kinds if mount.catalog[kind] != before[kind]]

    async def _refresh(self, mount: Mount, kinds: tuple[str, ...], announce: bool) -> None:
        """Re-read some lists of one mount, rebuild, and tell the clients: of every kind when
        the backend announced a change (``announce``), else of those that did change."""
        if announce and self.cache is not None:  # cached copies of these lists are stale now
            await self.cache.lists_changed(mount.mount_id, kinds)
        changed = await self._reread(mount, kinds)
        self._rebuild()
        told = list(kinds) if announce else changed
        if told:
            self.broadcast_list_changed(told, mount.mount_id)

    def broadcast_list_changed(self, kinds: Iterable[str], mount_id: str | None = None) -> None:
        """Tell every initialized client that some lists changed (of ``mount_id``: only the
        clients whose persona may know of that mount)."""
        for method in dict.fromkeys(_KIND_NOTIFICATION[kind] for kind in kinds):
            message = jsonrpc.notification(method)
            for session in self.sessions.values():
                if session.initialized and (mount_id is None or self.may_notice(session, mount_id)):
                    session.send(message)
            self.listens.list_changed(method, mount_id)

    def may_notice(self, session: FrontSession | Any, mount_id: str) -> bool:
        """True when the session's persona lets it know that ``mount_id`` exists."""
        return self.access is None or self.access.sees_mount(session.caller, mount_id)

    # -- result mapping (backend -> front) ------------------------------------------------

    def map_tool_result(
        self, request: Request, upstream: UpstreamSession, result: dict[str, Any]
    ) -> None:
        """Map URIs inside a tool result, and the task id of a task-creating call."""
        self.namespace.map_contents(upstream.mount_id, result.get("content"))
        task = result.get("task")
        if isinstance(task, dict):
            self._map_task(request, upstream, task)

    def map_prompt_result(
        self, request: Request, upstream: UpstreamSession, result: dict[str, Any]
    ) -> None:
        """Map URIs of embedded resources inside prompt messages."""
        messages = result.get("messages")
        if isinstance(messages, list):
            self.namespace.map_contents(
                upstream.mount_id, [m.get("content") for m in messages if isinstance(m, dict)])

    def map_read_result(
        self, request: Request, upstream: UpstreamSession, result: dict[str, Any]
    ) -> None:
        """Map the URIs of ``resources/read`` contents."""
        self.namespace.map_resource_contents(upstream.mount_id, result.get("contents"))

    def map_task_object(
        self, request: Request, upstream: UpstreamSession, result: dict[str, Any]
    ) -> None:
        """Map the task id of a ``tasks/get`` or ``tasks/cancel`` result."""
        self._map_task(request, upstream, result)

    def _map_task(
        self, request: Request, upstream: UpstreamSession, task: dict[str, Any]
    ) -> None:
        backend_id = task.get("taskId")
        if not isinstance(backend_id, str):
            return
        task_id = self._task_ids.get((upstream, backend_id))
        if task_id is None:  # a task just created: it belongs to the session that asked
            # with a cluster it names this instance, which alone can reach it
            here = "" if self.cluster is None else f"{self.cluster.instance}{ID_SEPARATOR}"
            task_id = f"{here}{upstream.mount_id}.{secrets.token_hex(8)}"
            self.tasks[task_id] = TaskEntry(request.sink, request.caller.session_id,
                                            upstream.mount_id, upstream, backend_id)
            self._task_ids[(upstream, backend_id)] = task_id
        task["taskId"] = task_id

    def serve_task(self, request: Request, method: str, params: dict[str, Any]) -> None:
        """Serve ``tasks/get``, ``tasks/result`` or ``tasks/cancel`` of a task this
        instance holds for the request's session.

        :raises RpcError: the session has no such task here, or its backend is unavailable.
        """
        task_id = params.get("taskId")
        entry = self.tasks.get(task_id) if isinstance(task_id, str) else None
        if entry is None or entry.session_id != request.caller.session_id:
            raise RpcError(INVALID_PARAMS, f"Unknown task: {task_id}")
        params = {**params, "taskId": entry.backend_task_id}
        mount = self.mounts.get(entry.mount_id)
        if mount is None or not entry.upstream.alive:
            raise RpcError(BACKEND_UNAVAILABLE, f"Backend {entry.mount_id!r} is unavailable")
        if method == "tasks/result":  # waits for the task itself: no timeout of its own
            self.router.forward(request, mount, None, entry.upstream, method, params,
                                self.map_tool_result, None)
        else:
            timeout = mount.timeout_for(method, self.config.gateway.request_timeout)
            self.router.forward(request, mount, None, entry.upstream, method, params,
                                self.map_task_object, timeout)

    async def list_tasks(self, session_id: str, cursor: Any) -> dict[str, Any]:
        """The tasks a session created through this instance, as each backend reports
        them now."""
        if cursor is not None:
            raise RpcError(INVALID_PARAMS, f"Invalid cursor: {cursor!r}")
        by_upstream: dict[UpstreamSession, dict[str, str]] = {}
        for task_id, entry in self.tasks.items():
            if entry.session_id == session_id:
                by_upstream.setdefault(entry.upstream, {})[entry.backend_task_id] = task_id
        listed: list[dict[str, Any]] = []
        for upstream, ids in by_upstream.items():
            result = await upstream.request("tasks/list", None, self.config.gateway.request_timeout)
            for task in result.get("tasks") or []:
                if isinstance(task, dict) and task.get("taskId") in ids:
                    listed.append({**task, "taskId": ids[task["taskId"]]})
        return {"tasks": listed}

    def progress_token(self, request: Request, token: Any) -> int:
        """A gateway-wide progress token standing for a request's own."""
        gateway_token = next(self._counter)
        self.progress[gateway_token] = (request, token)
        return gateway_token

    def map_elicitation(self, session: FrontSession, upstream: UpstreamSession, eid: str) -> str:
        """A gateway elicitation id standing for a backend's, for the completion notice."""
        front_id = f"{upstream.mount_id}.{next(self._counter)}.{eid}"
        self._elicitations[(upstream, eid)] = (session, front_id)
        return front_id

    # -- subscriptions --------------------------------------------------------------------

    async def subscribe(self, session: FrontSession, route: tuple[str, str]) -> dict[str, Any]:
        """Subscribe a session; the backend hears of it only for the first subscriber."""
        subscribers = self.subscribers.setdefault(route, set())
        if session in subscribers:
            return {}
        first = not subscribers
        subscribers.add(session)
        session.subscriptions.add(route)
        if first:
            try:
                await self._backend_request(route[0], "resources/subscribe", {"uri": route[1]})
            except RpcError:
                subscribers.discard(session)
                session.subscriptions.discard(route)
                if not subscribers:
                    del self.subscribers[route]
                raise
        return {}

    async def unsubscribe(self, session: FrontSession, route: tuple[str, str]) -> dict[str, Any]:
        """Unsubscribe a session; the backend hears of it when the last one leaves."""
        session.subscriptions.discard(route)
        subscribers = self.subscribers.get(route)
        if not subscribers or session not in subscribers:
            return {}
        subscribers.discard(session)
        if not subscribers:
            del self.subscribers[route]
            mount = self.mounts.get(route[0])
            if mount is not None and mount.state == "up":
                await self._backend_request(route[0], "resources/unsubscribe", {"uri": route[1]})
        return {}

    async def _backend_request(self, mount_id: str, method: str, params: dict[str, Any]) -> Any:
        mount = self.mounts.get(mount_id)
        upstream = mount.primary if mount is not None else None
        if upstream is None:
            raise RpcError(-32000, f"Backend {mount_id!r} is unavailable")
        timeout = mount.config.timeout or self.config.gateway.request_timeout  # type: ignore[union-attr]
        return await upstream.request(method, params, timeout)

    # -- logging levels -------------------------------------------------------------------

    def log_levels_changed(self) -> None:
        """Give backends the most verbose level any client asked for."""
        ranks = [s.log_rank for s in self.sessions.values() if s.log_rank is not None]
        rank = min(ranks) if ranks else None
        if rank is None or rank == self._backend_log_rank:
            return
        self._backend_log_rank = rank
        for mount in self.mounts.values():
            for upstream in mount.connections():
                self._send_log_level(upstream)

    def _send_log_level(self, upstream: UpstreamSession) -> None:
        """Give one backend connection the most verbose level any client asked for."""
        rank = self._backend_log_rank
        if rank is not None and "logging" in upstream.capabilities:
            upstream.forward("logging/setLevel", {"level": LOG_LEVELS[rank]},
                             _ignore, self.config.gateway.request_timeout)

    def isolated_up(self, mount: Mount, key: str) -> None:
        """An isolated connection of ``mount`` was opened for ``key``: bring it in line."""
        replica = mount.pool.live(key) if mount.pool is not None else None
        if replica is not None and replica.upstream is not None:
            self._send_log_level(replica.upstream)

    def roots_changed(self, session: FrontSession) -> None:
        """A client's roots changed: tell every backend connection that may serve it (they
        ask for roots again)."""
        persona = _persona_key(session)
        for mount in self.mounts.values():
            for upstream in mount.connections():
                scope = upstream.scope
                if scope is None or scope[1] == (
                        session.session_id if scope[0] == "session" else persona):
                    upstream.notify("notifications/roots/list_changed")

    # -- UpstreamEvents -------------------------------------------------------------------

    def _attribute(
        self, upstream: UpstreamSession, origin: Any
    ) -> tuple[Sink, Request | None] | None:
        """The sink (and the request) a backend-initiated message belongs to, or None.

        Only what the protocol gives counts: the request whose stream carried the message
        (``origin``), or a connection that serves one session alone. With no relation, the
        message is attributed only when exactly one sink has requests in flight on the
        connection; when several have, nobody gets it (see :meth:`_ambiguous`).
        """
        if origin is not NO_RELATION:
            if origin is None or origin.sink.closed:
                return None
            return origin.sink, origin
        scope = upstream.scope
        if scope is not None and scope[0] == "session":
            session = self.sessions.get(scope[1])
            if session is not None:
                return session, self._newest_request(upstream, session)
        sinks = [s for s in upstream.callers_in_flight() if not s.closed]
        if len(sinks) != 1:
            return None
        return sinks[0], self._newest_request(upstream, sinks[0])

    @staticmethod
    def _newest_request(upstream: UpstreamSession, sink: Sink) -> Request | None:
        """The newest request ``sink`` has in flight on ``upstream``."""
        for pending in reversed(upstream.pending.values()):
            owner = pending.owner
            if owner is not None and owner.sink is sink:
                return owner
        return None

    def _ambiguous(self, upstream: UpstreamSession, origin: Any) -> bool:
        """True when a message with no relation arrived while several sessions had requests
        in flight on a shared connection; the first time per mount, say how to fix it."""
        if origin is not NO_RELATION or upstream.scope is not None:
            return False
        if sum(not s.closed for s in upstream.callers_in_flight()) < 2:
            return False
        if upstream.mount_id not in self._ambiguity_warned:
            self._ambiguity_warned.add(upstream.mount_id)
            log.warning(
                "mount %s: the backend sent a request or log message while several clients "
                "had calls in flight, and its transport does not say which call it belongs "
                "to; vmcp refuses to guess (requests are refused, log lines stay in the "
                "gateway log). Set isolation = \"session\" (or \"persona\") on the mount so "
                "that each client gets its own connection.", upstream.mount_id)
        return True

    def _audience(self, upstream: UpstreamSession) -> Iterable[FrontSession]:
        """The sessions a server-wide message of ``upstream`` may reach."""
        scope = upstream.scope
        sessions = self.sessions.values()
        if scope is None:
            return [s for s in sessions if s.initialized and self.may_notice(s, upstream.mount_id)]
        if scope[0] == "session":
            session = self.sessions.get(scope[1])
            return [session] if session is not None and session.initialized else []
        return [s for s in sessions if s.initialized and _persona_key(s) == scope[1]
                and self.may_notice(s, upstream.mount_id)]

    def upstream_notification(
        self, upstream: UpstreamSession, message: JsonMessage, origin: Any = NO_RELATION
    ) -> None:
        """Route a backend notification to the session(s) it belongs to."""
        method = message.get("method")
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        if method == "notifications/progress":
            entry = self.progress.get(params.get("progressToken"))  # type: ignore[arg-type]
            if entry is not None:
                request, token = entry
                request.sink.send(jsonrpc.notification(method, {**params, "progressToken": token}),
                                  request.id)
                self.router.extend(request)
        elif method == "notifications/message":
            self._relay_log(upstream, message, params, origin)
        elif method in CHANGED_KINDS:
            self._schedule_refresh(upstream.mount_id, CHANGED_KINDS[method])
        elif method == "notifications/resources/updated":
            if self.cache is not None:  # drop cached reads before subscribers re-read
                self.spawn(self._resource_updated(upstream, params))
            else:
                self._relay_updated(upstream, params)
        elif method == "notifications/cancelled":
            target = self.reverse.pop((upstream, params.get("requestId")), None)
            if target is not None:
                target[0].cancel_reverse(target[1], params.get("reason"))
        elif method == "notifications/elicitation/complete":
            found = self._elicitations.pop((upstream, params.get("elicitationId")), None)  # type: ignore[arg-type]
            if found is not None:
                found[0].send(jsonrpc.notification(method, {**params, "elicitationId": found[1]}))
        elif method == "notifications/tasks/status":
            task_id = self._task_ids.get((upstream, params.get("taskId")))  # type: ignore[arg-type]
            if task_id is not None:
                self.tasks[task_id].session.send(
                    jsonrpc.notification(method, {**params, "taskId": task_id}))
        else:
            log.debug("backend %s sent %s; not relayed", upstream.mount_id, method)

    def _relay_log(
        self, upstream: UpstreamSession, message: JsonMessage, params: dict[str, Any],
        origin: Any,
    ) -> None:
        level = params.get("level")
        related = self._attribute(upstream, origin)
        if related is not None:
            sink, request = related
            if request is not None:
                if request.wants_log(level):
                    sink.send(message, request.id)
            elif isinstance(sink, FrontSession) and sink.wants_log(level):
                sink.send(message)
            return
        if origin is not NO_RELATION or self._ambiguous(upstream, origin):
            log.info("backend %s logged (kept here, its caller is unknown): %s",
                     upstream.mount_id, params.get("data"))
            return
        if upstream.callers_in_flight():
            return  # only closed sessions had calls in flight: theirs, not anyone else's
        for session in self._audience(upstream):
            if session.wants_log(level):
                session.send(message)

    def _relay_updated(self, upstream: UpstreamSession, params: dict[str, Any]) -> None:
        uri = params.get("uri")
        if not isinstance(uri, str):
            return
        subscribers = self.subscribers.get((upstream.mount_id, uri))
        if not subscribers:
            return
        front = self.namespace.front_uri(upstream.mount_id, uri)
        message = jsonrpc.notification("notifications/resources/updated", {**params, "uri": front})
        visible = self.visible
        for session in subscribers:
            if visible is None or visible(session.caller, upstream.mount_id, "resource", uri):
                session.send(message)

    async def _resource_updated(self, upstream: UpstreamSession, params: dict[str, Any]) -> None:
        uri = params.get("uri")
        if self.cache is not None and isinstance(uri, str):
            await self.cache.resource_updated(upstream.mount_id, uri)
        self._relay_updated(upstream, params)

    def _schedule_refresh(self, mount_id: str, kinds: tuple[str, ...]) -> None:
        mount = self.mounts.get(mount_id)
        if mount is None or mount.state != "up":
            return
        self.spawn(self._refresh(mount, kinds, announce=True))

    def spawn(self, work: Any) -> None:
        """Run ``work`` in the background, kept until it is done."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def upstream_request(
        self, upstream: UpstreamSession, message: JsonMessage, origin: Any = NO_RELATION
    ) -> None:
        """Relay a backend's request to the front client whose call caused it."""
        method = message.get("method")
        if method == "ping":
            upstream.respond(jsonrpc.result(message.get("id"), {}))
            return
        target = self._request_target(upstream, message, origin)
        if target is None:
            if self._ambiguous(upstream, origin):
                reason = (f"vmcp cannot tell which of several clients {method} is for; set "
                          f"isolation = \"session\" on mount {upstream.mount_id!r}")
            else:
                reason = f"{method} was sent outside any call of a connected client"
            upstream.respond(jsonrpc.error(message.get("id"), RpcError(INTERNAL_ERROR, reason)))
            return
        target[0].relay_request(target[1], upstream, message)

    def _request_target(
        self, upstream: UpstreamSession, message: JsonMessage, origin: Any
    ) -> tuple[Sink, Request | None] | None:
        params = message.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        related_task = meta.get(RELATED_TASK) if isinstance(meta, dict) else None
        if isinstance(related_task, dict):
            task_id = self._task_ids.get((upstream, related_task.get("taskId")))  # type: ignore[arg-type]
            if task_id is not None:
                related_task["taskId"] = task_id
                return self.tasks[task_id].session, None
        return self._attribute(upstream, origin)

    def upstream_closed(self, upstream: UpstreamSession, reason: str) -> None:
        """A backend went away: restart it; if its mount is left with no replica, its items
        leave the lists and clients hear of it."""
        mount = self.mounts.get(upstream.mount_id)
        for key in [k for k in self.reverse if k[0] is upstream]:
            session, client_id = self.reverse.pop(key)
            session.cancel_reverse(client_id, f"backend {upstream.mount_id} went away")
        if mount is None:
            return
        if upstream.scope is not None:  # an isolated connection: the next call opens another
            if mount.pool is not None:
                mount.pool.discard(upstream)
            return
        for replica in mount.replicas:
            if replica.upstream is upstream:
                log.warning("replica %s went away: %s", replica.replica_id, reason)
                self.supervisor.replica_lost(mount, replica)
        if mount.state != "up" or mount.primary is not None:
            return
        log.warning("backend %s went away: %s", mount.mount_id, reason)
        mount.state = "down"
        if self.cache is not None:
            self.spawn(self.cache.mount_changed(mount.mount_id))
        mount.error = reason
        for route in [r for r in self.subscribers if r[0] == mount.mount_id]:
            for session in self.subscribers.pop(route):
                session.subscriptions.discard(route)
        if not self.warm.keep(mount, self._withdraw):
            self._withdraw(mount)

    def _withdraw(self, mount: Mount) -> None:
        """Take a mount that is down out of the lists; clients hear of it."""
        had = [kind for kind, items in mount.catalog.items() if items]
        for kind in mount.catalog:
            mount.catalog[kind] = []
        self._rebuild()
        self.broadcast_list_changed(had, mount.mount_id)
        self.spawn(self._call_hook(self._pm.hook.vmcp_server_unmounted, mount_id=mount.mount_id))


def _persona_access(gateway: Gateway) -> PersonaAccess:
    """Persona enforcement over the personas folder (the persona package is imported only
    by a gateway that enforces personas)."""
    from vmcp.persona import PersonaStore

    return PersonaAccess(gateway, PersonaStore.default())


def _open_cluster(config: VmcpConfig) -> SharedState | None:
    """The ``[cluster]`` shared state; a missing or broken driver leaves the instance alone."""
    try:
        return open_shared(config)
    except PluginError as exc:
        log.error("cluster disabled: %s", exc)
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _ignore(message: JsonMessage) -> None:
    if "error" in message:
        log.debug("backend refused a gateway request: %s", message["error"])


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RpcError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__



def _persona_key(session: FrontSession) -> str:
    """The key of a session's persona-isolated connections."""
    principal = session.caller.principal
    return (principal.persona if principal is not None else None) or ""
