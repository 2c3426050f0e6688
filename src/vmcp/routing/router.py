"""The path of a routed request: admission, replica choice, circuit breaker, retry and
failover, timeout, middleware chain and cache, down to one backend connection.

A plain call takes a path with no task and no copy of the response: it is forwarded with a
fresh backend id, the :class:`~vmcp.routing.request.Request` itself as the owner of the
backend call, and the backend's response object is delivered to the request's sink with
the client's id put back. Only requests that must wait on several things (a cache, retries,
middleware, an isolated connection being opened) run in a task of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from vmcp.auth.base import connecting_for
from vmcp.protocol.errors import BACKEND_UNAVAILABLE, RETRY_AFTER, RpcError
from vmcp.registry.isolation import isolation_key
from vmcp.routing.middleware import CallNotes, MiddlewareChain, RoutedRequest
from vmcp.routing.request import Request, Sink
from vmcp.routing.retry import REPLICA_FAILURES, backoff, may_retry
from vmcp.routing.signin import SignIns
from vmcp.transports.base import JsonMessage
from vmcp.transports.signin import SignInNeeded
from vmcp.upstream.session import UpstreamSession

if TYPE_CHECKING:
    from vmcp.cache.layer import CacheLayer
    from vmcp.config import VmcpConfig
    from vmcp.gateway.warmcatalog import WarmCatalog
    from vmcp.registry.mount import Mount, Replica

#: how often one call may find its connection waiting for a sign-in (its own, or a sign-in
#: of the same grant owner another caller was carrying out)
SIGN_IN_ROUNDS = 3

#: maps names and URIs inside a backend's result to the front's (in place)
Mapper = Callable[[Request, UpstreamSession, dict[str, Any]], None]


class RoutingHost(Protocol):
    """What the router needs from the gateway that runs it."""

    config: VmcpConfig
    mounts: dict[str, Mount]
    cache: CacheLayer | None
    middleware: MiddlewareChain | None
    metrics: Any
    #: gateway progress token -> (the request, the client's own token)
    progress: dict[int, tuple[Request, Any]]
    #: the warm catalog: calls for a mount listed from it wait until the mount is up
    warm: WarmCatalog

    def progress_token(self, request: Request, token: Any) -> int:
        """A gateway-wide progress token standing for a request's own."""

    def startup_timeout(self, mount: Mount) -> float:
        """Seconds a connection to ``mount`` may take to come up."""

    def prepare_hook(self) -> Any:
        """The hook that prepares a backend's environment before it is spawned."""

    def isolated_up(self, mount: Mount, key: str) -> None:
        """A caller's isolated connection to ``mount`` has just been opened."""

    def upstream_notification(self, upstream: Any, message: JsonMessage, origin: Any) -> None:
        """A notification from a backend (or from a sign-in standing in for one)."""


class Router:
    """Routes requests to one mount each, for every adapter of one gateway."""

    def __init__(self, host: RoutingHost) -> None:
        self.host = host
        self.sign_ins = SignIns(host)

    def route(
        self, request: Request, mount_id: str, method: str, params: dict[str, Any],
        mapper: Mapper | None,
    ) -> None:
        """Send a request to a replica of one mount; its response reaches the request's sink.

        Raises :class:`RpcError` when the request cannot be sent at all.
        """
        host = self.host
        mount = host.mounts.get(mount_id)
        if mount is None:
            raise RpcError(BACKEND_UNAVAILABLE, f"Backend {mount_id!r} is unavailable")
        if mount.warm and host.warm.waits_for(mount):  # listed from the warm catalog, not up
            host.warm.route_later(request, mount, partial(
                self._dequeued, request, mount_id, method, params, mapper))
            return
        config = mount.config
        limit = config.max_in_flight
        if limit is not None and mount.in_flight >= limit:
            if len(mount.waiting) >= config.max_queue:
                raise RpcError(BACKEND_UNAVAILABLE, f"Backend {mount_id!r} is overloaded: "
                               f"{limit} requests in flight and its queue is full",
                               {RETRY_AFTER: 1})
            mount.waiting.append(partial(self._dequeued, request, mount_id, method, params,
                                         mapper))
            return
        pool = mount.pool
        if pool is not None and pool.live(pool_key(request, mount)) is None:
            self._connect_isolated(request, mount, method, params, mapper)
            return
        cache = host.cache
        if cache is not None and (ttl := cache.request_ttl(config, method, params)):
            _remember(request, mount_id, method, params, mapper)
            request.spawn(self._cached(request, mount, method, params, mapper, ttl))
            return
        timeout = mount.timeout_for(method, host.config.gateway.request_timeout)
        retry = config.retry
        if host.middleware is not None:
            _remember(request, mount_id, method, params, mapper)
            replica = self.pick(request, mount)
            params, token = self._progress(request, params)
            routed = routed_request(request, mount_id, method, params)
            request.spawn(self._through_middleware(request, routed, replica, timeout, mapper,
                                                   token))
        elif retry.attempts > 1 and may_retry(method, params, retry, mount.safe_tools):
            _remember(request, mount_id, method, params, mapper)
            params, token = self._progress(request, params)
            request.spawn(self._with_retries(request, mount, method, params, mapper, timeout,
                                             token))
        else:
            replicas = mount.replicas  # pick()'s common case, inline: the hot path
            replica = replicas[0] if len(replicas) == 1 else None
            if replica is None or pool is not None or config.sticky or not replica.available:
                replica = self.pick(request, mount)
            self.forward(request, mount, replica, replica.upstream,  # type: ignore[arg-type]
                         method, params, mapper, timeout)

    def _dequeued(self, request: Request, mount_id: str, method: str, params: dict[str, Any],
                  mapper: Mapper | None) -> None:
        if request.sink.closed:
            return
        try:
            self.route(request, mount_id, method, params, mapper)
        except RpcError as exc:
            request.sink.fail(request.id, exc)

    # -- replicas and connections ---------------------------------------------------------

    def pick(self, request: Request, mount: Mount,
             exclude: set[Replica] | frozenset[Replica] = frozenset()) -> Replica:
        """The replica (or the caller's isolated connection) to send ``request`` to."""
        if mount.pool is not None:
            pooled = mount.pool.live(pool_key(request, mount))
            if pooled is None:
                raise RpcError(BACKEND_UNAVAILABLE, mount.unavailable_reason())
            return pooled
        replicas = mount.replicas
        sticky = mount.config.sticky
        if len(replicas) == 1 and not sticky and replicas[0].available:  # the common case
            return replicas[0]
        affinity = request.sink.affinity
        replica = mount.pick(request.caller.session_id,
                             affinity.get(mount.mount_id) if sticky else None, exclude)
        if replica is None:
            raise RpcError(BACKEND_UNAVAILABLE, mount.unavailable_reason())
        if sticky:
            affinity[mount.mount_id] = replica
        return replica

    def _connect_isolated(self, request: Request, mount: Mount, method: str,
                          params: dict[str, Any], mapper: Mapper | None) -> None:
        """Open this caller's own connection to an isolated mount, then route the request.

        A connection waiting for a person's sign-in is made once the grant exists: the
        caller's client is asked to carry the sign-in out (see :mod:`vmcp.routing.signin`).
        While it is asked the request may move to another sink and id (a 2026-07-28 retry),
        so both are read from the request each time.
        """
        pool = mount.pool
        assert pool is not None
        key = pool_key(request, mount)
        host = self.host
        first = (request.sink, request.id)

        async def connect() -> None:
            connecting_for.set(request.caller.principal)  # this task's context only
            task = asyncio.current_task()
            try:
                await self._acquire_signed_in(request, mount, key)
            except RpcError as exc:
                request.sink.fail(request.id, exc)
                return
            finally:
                for sink, request_id in (first, (request.sink, request.id)):
                    if sink.tasks.get(request_id) is task:
                        del sink.tasks[request_id]
            if pool.live(key) is None:
                request.sink.fail(request.id, RpcError(BACKEND_UNAVAILABLE,
                                                       mount.unavailable_reason()))
            else:
                host.isolated_up(mount, key)
                self._dequeued(request, mount.mount_id, method, params, mapper)

        request.sink.tasks[request.id] = asyncio.get_running_loop().create_task(connect())

    async def _acquire_signed_in(self, request: Request, mount: Mount, key: str) -> None:
        """Open the caller's isolated connection, after the sign-ins it waits for."""
        pool = mount.pool
        assert pool is not None
        host = self.host
        loop = asyncio.get_running_loop()
        for round_ in range(SIGN_IN_ROUNDS):
            tried_at = loop.time()
            try:
                await pool.acquire(key, host, host.startup_timeout(mount), host.prepare_hook())
                return
            except SignInNeeded as needed:
                if round_ == SIGN_IN_ROUNDS - 1:
                    raise self.sign_ins.refusal(mount.mount_id, needed) from None
                await self.sign_ins.settle(request, mount.mount_id, needed,
                                           host.config.gateway.request_timeout, tried_at)

    # -- the direct path ------------------------------------------------------------------

    def _progress(self, request: Request, params: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """Swap a client's progress token for a gateway-wide one."""
        meta = params.get("_meta")
        if isinstance(meta, dict) and "progressToken" in meta:
            token = self.host.progress_token(request, meta["progressToken"])
            return {**params, "_meta": {**meta, "progressToken": token}}, token
        return params, None

    def forward(
        self,
        request: Request,
        mount: Mount,
        replica: Replica | None,
        upstream: UpstreamSession,
        method: str,
        params: dict[str, Any],
        mapper: Mapper | None,
        timeout: float | None,
    ) -> None:
        """The hot path: send with a fresh id, relay the response object with ours put back."""
        request.mount_id = mount.config.id  # what _remember does, inline on the hot path
        request.method = method
        request.params = params
        request.mapper = mapper
        token = None
        if "_meta" in params:
            params, token = self._progress(request, params)
        if replica is not None and replica.breaker.state != "closed":
            replica.breaker.before_call()  # it has nothing to do for a closed circuit
        started = perf_counter() if mount.observed else 0.0
        callback = partial(self._relay, request, mount, replica, upstream, mapper, token,
                           started)
        metrics = self.host.metrics
        if metrics is not None:
            callback = metrics.track(mount.mount_id, method, callback)
        backend_id = upstream.forward(method, params, callback, timeout, request,
                                      mount.config.max_timeout)
        if backend_id in upstream.pending:
            request.sink.inflight[request.id] = (upstream, backend_id, token)

    def _relay(
        self, request: Request, mount: Mount, replica: Replica | None, upstream: UpstreamSession,
        mapper: Mapper | None, token: int | None, started: float, message: JsonMessage,
    ) -> None:
        sink = request.sink
        sink.inflight.pop(request.id, None)
        if token is not None:
            self.host.progress.pop(token, None)
        if replica is not None:
            ok = "error" not in message or not (
                isinstance(error := message["error"], dict)
                and error.get("code") in REPLICA_FAILURES)
            replica.breaker.record(ok)
            if mount.observed:
                mount.balancer.observe(replica, perf_counter() - started, ok)
        if mount.waiting:
            mount.waiting.popleft()()
        if sink.closed:
            return
        if ("error" in message and mount.pool is not None
                and self.sign_ins.worth_signing_in(request, upstream)):
            # the caller's connection lost its grant (it is ending): a new one is made
            # after a sign-in
            mount.pool.discard(upstream)
            self._connect_isolated(request, mount, request.method, request.params, mapper)
            return
        if mapper is not None:
            result = message.get("result")
            if isinstance(result, dict):
                mapper(request, upstream, result)
        message["id"] = request.id
        sink.deliver(request, message)

    def extend(self, request: Request) -> None:
        """Progress arrived for a call: its timeout starts again (up to its hard maximum)."""
        entry = request.sink.inflight.get(request.id)
        if entry is not None:
            entry[0].extend(entry[1])

    def cancel(self, sink: Sink, request_id: Any, reason: str) -> None:
        """Withdraw a front request: the backend hears ``notifications/cancelled``."""
        entry = sink.inflight.pop(request_id, None)
        if entry is not None:
            upstream, backend_id, token = entry
            upstream.cancel(backend_id, reason)
            if token is not None:
                self.host.progress.pop(token, None)
        task = sink.tasks.pop(request_id, None)
        if task is not None:
            task.cancel()

    # -- paths that wait ------------------------------------------------------------------

    async def call_replica(
        self, request: Request, mount: Mount, replica: Replica, method: str,
        params: dict[str, Any], timeout: float | None, notes: CallNotes | None = None,
    ) -> dict[str, Any]:
        """One call to one replica, counted by its breaker, balancer and metrics (and in
        ``notes`` when given)."""
        upstream = replica.upstream
        assert upstream is not None
        if notes is not None:
            notes.replica = replica.replica_id
            notes.attempts += 1
        replica.breaker.before_call()
        started = perf_counter()
        ok = False
        result: dict[str, Any] | None = None
        try:
            result = await upstream.request(method, params, timeout, request)
            ok = True
            return result
        except RpcError as exc:
            ok = exc.code not in REPLICA_FAILURES
            raise
        finally:
            replica.breaker.record(ok)
            if mount.observed:
                mount.balancer.observe(replica, perf_counter() - started, ok)
            if self.host.metrics is not None:
                self.host.metrics.record_call(mount.mount_id, method, result,
                                              perf_counter() - started)

    async def _with_retries(
        self, request: Request, mount: Mount, method: str, params: dict[str, Any],
        mapper: Mapper | None, timeout: float | None, token: int | None,
        notes: CallNotes | None = None,
    ) -> dict[str, Any]:
        """Repeat a safe request on failure, failing over to replicas not yet tried."""
        settings = mount.config.retry
        budget = mount.retry_budget
        budget.record_request()
        tried: set[Replica] = set()

        def worth_retrying(exc: BaseException) -> bool:
            return (isinstance(exc, RpcError) and exc.code in REPLICA_FAILURES
                    and budget.try_spend())

        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(settings.attempts),
                wait=backoff(settings.initial_backoff, settings.max_backoff),
                retry=retry_if_exception(worth_retrying),
                reraise=True,
            ):
                with attempt:
                    replica = self.pick(request, mount, tried)
                    tried.add(replica)
                    result = await self.call_replica(request, mount, replica, method, params,
                                                     timeout, notes)
        finally:
            if token is not None:
                self.host.progress.pop(token, None)
        if mapper is not None:
            mapper(request, replica.upstream, result)  # type: ignore[arg-type]
        return result

    async def _through_middleware(
        self, request: Request, routed: RoutedRequest, replica: Replica, timeout: float | None,
        mapper: Mapper | None, token: int | None,
    ) -> dict[str, Any]:
        mount = self.host.mounts[routed.mount_id]
        retry = mount.config.retry

        async def call_backend(routed: RoutedRequest) -> dict[str, Any]:
            # a safe request is retried and failed over as it is without middleware
            if retry.attempts > 1 and may_retry(routed.method, routed.params, retry,
                                                mount.safe_tools):
                return await self._with_retries(request, mount, routed.method, routed.params,
                                                None, timeout, None, routed.notes)
            return await self.call_replica(request, mount, replica, routed.method,
                                           routed.params, timeout, routed.notes)

        middleware = self.host.middleware
        assert middleware is not None
        try:
            result = await middleware(routed, call_backend)
        finally:
            if token is not None:
                self.host.progress.pop(token, None)
        if mapper is not None:
            mapper(request, replica.upstream, result)  # type: ignore[arg-type]
        return result

    async def _cached(
        self, request: Request, mount: Mount, method: str, params: dict[str, Any],
        mapper: Mapper | None, ttl: float,
    ) -> dict[str, Any]:
        """A cacheable request: the cache answers, or the backend does and the cache keeps it
        (middleware, when there is some, wraps both)."""
        host = self.host
        cache = host.cache
        assert cache is not None
        replica = self.pick(request, mount)
        upstream = replica.upstream
        timeout = mount.timeout_for(method, host.config.gateway.request_timeout)
        retry = mount.config.retry
        persona = request.caller.persona

        async def fetch(routed: RoutedRequest) -> dict[str, Any]:
            routed.notes.cache = "miss"
            if retry.attempts > 1 and may_retry(routed.method, routed.params, retry,
                                                mount.safe_tools):
                return await self._with_retries(request, mount, routed.method, routed.params,
                                                None, timeout, None, routed.notes)
            return await self.call_replica(request, mount, replica, routed.method,
                                           routed.params, timeout, routed.notes)

        async def call_backend(routed: RoutedRequest) -> dict[str, Any]:
            routed.notes.cache = "hit"  # fetch says "miss" when the backend is asked
            principal = routed.caller.principal
            return await cache.call(mount.config, routed.method, routed.params, persona, ttl,
                                    partial(fetch, routed),
                                    principal.name if principal is not None else None)

        routed = routed_request(request, mount.mount_id, method, params)
        middleware = host.middleware
        result = await (call_backend(routed) if middleware is None
                        else middleware(routed, call_backend))
        if mapper is not None:
            mapper(request, upstream, result)  # type: ignore[arg-type]
        return result


def routed_request(request: Request, mount_id: str, method: str,
                   params: dict[str, Any]) -> RoutedRequest:
    """What the middleware chain is given for ``request`` going to ``mount_id``."""
    return RoutedRequest(request.caller, mount_id, method, params, request.id,
                         getattr(request, "approval", None))


def _remember(request: Request, mount_id: str, method: str, params: dict[str, Any],
              mapper: Mapper | None) -> None:
    """Note where a request goes, as its backend gets it (before any progress token is
    swapped in), so that it can be sent again with a client's input."""
    request.mount_id = mount_id
    request.method = method
    request.params = params
    request.mapper = mapper


def pool_key(request: Request, mount: Mount) -> str:
    """The key of the isolated connection of ``mount`` that serves ``request``'s caller."""
    caller = request.caller
    return isolation_key(mount.config.isolation, caller.session_id, caller.persona)
