"""A front session: one connected client, its state, and the dispatch of what it sends.

Routed requests (``tools/call``, ``resources/read`` ...) take a path with no task and no
copy of the response: the request is forwarded with a fresh backend id and the backend's
response object is sent on with the client's id put back. Lists are answered from the
gateway's namespace snapshot. Only requests that must wait on several things (subscriptions,
stale lists, middleware) run in a task of their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from vmcp import __version__
from vmcp.auth.base import Principal
from vmcp.gateway.middleware import Caller, RoutedRequest
from vmcp.gateway.paging import page
from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import (
    BACKEND_UNAVAILABLE,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    RESOURCE_NOT_FOUND,
    RETRY_AFTER,
    RpcError,
)
from vmcp.protocol.versions import negotiate
from vmcp.registry.isolation import isolation_key
from vmcp.routing.retry import REPLICA_FAILURES, backoff, may_retry
from vmcp.transports.base import FrontPeer, JsonMessage
from vmcp.upstream.session import UpstreamSession

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway
    from vmcp.registry.mount import Mount, Replica

log = logging.getLogger("vmcp.gateway")

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
LEVEL_RANK = {name: rank for rank, name in enumerate(LOG_LEVELS)}

#: list method -> (namespace list kind, result key)
LIST_METHODS = {
    "tools/list": ("tools", "tools"),
    "prompts/list": ("prompts", "prompts"),
    "resources/list": ("resources", "resources"),
    "resources/templates/list": ("resource_templates", "resourceTemplates"),
}
Mapper = Callable[["FrontSession", UpstreamSession, dict[str, Any]], None]
RequestHandler = Callable[["FrontSession", Any, dict[str, Any], str], None]


class FrontSession:
    """One front client connection."""

    def __init__(
        self, gateway: Gateway, peer: FrontPeer, principal: Principal | None, session_id: str
    ) -> None:
        self.gateway = gateway
        self.peer = peer
        self.caller = Caller(session_id, principal)
        self.client_capabilities: dict[str, Any] = {}
        self.client_info: dict[str, Any] = {}
        self.protocol_version: str | None = None
        self.initialized = False
        self.closed = False
        #: the minimum level of log notifications wanted, or None for all
        self.log_rank: int | None = None
        #: client request id -> (upstream, backend id, gateway progress token)
        self.inflight: dict[Any, tuple[UpstreamSession, int, int | None]] = {}
        self.tasks: dict[Any, asyncio.Task[None]] = {}
        #: client-side id of a relayed server->client request -> (upstream, backend id)
        self.reverse: dict[int, tuple[UpstreamSession, Any]] = {}
        self.affinity: dict[str, Replica] = {}
        self.subscriptions: set[tuple[str, str]] = set()
        self._reverse_ids = 0
        #: the requests served now: ping and initialize until initialize, then all
        self._requests = _BEFORE_INITIALIZE

    @property
    def session_id(self) -> str:
        """The gateway-wide id of this session."""
        return self.caller.session_id

    # -- input ----------------------------------------------------------------------------

    def handle_bytes(self, data: bytes) -> None:
        """Take one raw message; malformed JSON gets -32700 and the session goes on."""
        try:
            message = jsonrpc.decode(data)
        except jsonrpc.DecodeError as exc:
            self.peer.send(jsonrpc.error(exc.request_id, exc), exc.request_id)
            return
        self.handle(message)

    def handle(self, message: Any) -> None:
        """Take one decoded message from the client."""
        if not isinstance(message, dict):
            reason = "batches are not supported" if isinstance(message, list) else "not an object"
            err = RpcError(INVALID_REQUEST, f"Invalid request: {reason}")
            self.peer.send(jsonrpc.error(None, err))
            return
        kind = jsonrpc.classify(message)
        if kind is not jsonrpc.REQUEST:
            if kind is jsonrpc.NOTIFICATION:
                self._notification(message["method"], message.get("params"))
            elif kind is jsonrpc.RESPONSE:
                self._client_response(message)
            else:
                request_id = _answerable(message.get("id"))
                self._fail(request_id, RpcError(
                    INVALID_REQUEST, "Invalid request: neither a request, a notification nor "
                    "a response (no method, result or error)"))
            return
        method, request_id = message["method"], message["id"]
        if type(method) is not str or type(request_id) not in _ID_TYPES:
            self._fail(_answerable(request_id), RpcError(
                INVALID_REQUEST, "Invalid request: the method must be a string and the id a "
                "string or an integer"))
            return
        params = message.get("params")
        if params is None:
            params = {}
        elif not isinstance(params, dict):
            self._fail(request_id, RpcError(INVALID_PARAMS, "params must be an object"))
            return
        handler = self._requests.get(method)
        if handler is None:
            if method in _REQUESTS:
                self._fail(request_id, RpcError(
                    INVALID_REQUEST, f"Invalid request: {method} before initialize (only ping "
                    "may precede it)"))
            else:
                self._fail(request_id, RpcError(METHOD_NOT_FOUND, f"Method not found: {method}"))
            return
        try:
            handler(self, request_id, params, method)
        except RpcError as exc:
            self._fail(request_id, exc)
        except Exception as exc:  # a handler's bug costs this request only, not the session
            log.exception("request %r (%s) failed", request_id, method)
            self._fail(request_id, RpcError(INTERNAL_ERROR, f"Internal error: {exc}"))

    def _notification(self, method: Any, params: Any) -> None:
        params = params if isinstance(params, dict) else {}
        if method == "notifications/initialized":
            self.initialized = True
        elif method == "notifications/cancelled":
            self._cancelled(params.get("requestId"), params.get("reason"))
        elif method == "notifications/roots/list_changed":
            self.gateway.roots_changed(self)
        else:
            log.debug("ignored notification %s from session %s", method, self.session_id)

    # -- output helpers -------------------------------------------------------------------

    def _reply(self, request_id: Any, result: dict[str, Any]) -> None:
        if not self.closed:
            self.peer.send(jsonrpc.result(request_id, result), request_id)

    def _fail(self, request_id: Any, err: RpcError) -> None:
        if not self.closed:
            self.peer.send(jsonrpc.error(request_id, err), request_id)

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Send a message the gateway originates or relays (dropped once closed)."""
        if not self.closed:
            self.peer.send(message, related_to)

    def _spawn(self, request_id: Any, work: Coroutine[Any, Any, dict[str, Any]]) -> None:
        async def run() -> None:
            try:
                self._reply(request_id, await work)
            except RpcError as exc:
                self._fail(request_id, exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("request %r failed", request_id)
                self._fail(request_id, RpcError(-32603, f"Internal error: {exc}"))
            finally:
                self.tasks.pop(request_id, None)

        self.tasks[request_id] = asyncio.get_running_loop().create_task(run())

    # -- lifecycle ------------------------------------------------------------------------

    def _initialize(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        caps = params.get("capabilities")
        self.client_capabilities = caps if isinstance(caps, dict) else {}
        info = params.get("clientInfo")
        self.client_info = info if isinstance(info, dict) else {}
        self.protocol_version = negotiate(params.get("protocolVersion"))
        self._requests = _REQUESTS
        settings = self.gateway.config.gateway
        result: dict[str, Any] = {
            "protocolVersion": self.protocol_version,
            "capabilities": self.gateway.front_capabilities(),
            "serverInfo": {"name": settings.name, "title": "vmcp gateway", "version": __version__},
        }
        if settings.instructions:
            result["instructions"] = settings.instructions
        self._reply(request_id, result)

    def _ping(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        self._reply(request_id, {})

    def _set_level(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        level = params.get("level")
        if level not in LEVEL_RANK:
            raise RpcError(INVALID_PARAMS, f"Invalid log level: {level!r}")
        self.log_rank = LEVEL_RANK[level]
        self.gateway.log_levels_changed()
        self._reply(request_id, {})

    def wants_log(self, level: Any) -> bool:
        """True when a log notification at ``level`` passes this client's ``setLevel``."""
        return self.log_rank is None or LEVEL_RANK.get(level, 0) >= self.log_rank

    # -- lists ----------------------------------------------------------------------------

    def _list(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        kind, key = LIST_METHODS[method]
        gateway = self.gateway
        if gateway.stale_kinds(kind):
            self._spawn(request_id, self._list_fresh(kind, key, params))
            return
        self._reply(request_id, self._list_page(kind, key, params))

    async def _list_fresh(self, kind: str, key: str, params: dict[str, Any]) -> dict[str, Any]:
        await self.gateway.refresh_stale(kind)
        return self._list_page(kind, key, params)

    def _list_page(self, kind: str, key: str, params: dict[str, Any]) -> dict[str, Any]:
        ns = self.gateway.namespace
        items = {
            "tools": ns.tool_list,
            "prompts": ns.prompt_list,
            "resources": ns.resource_list,
            "resource_templates": ns.template_list,
        }[kind]
        visible = self.gateway.visible
        if visible is not None:
            caller, label = self.caller, kind.removesuffix("s")
            items = [
                item for item, (mount_id, name) in zip(items, ns.list_routes[kind], strict=True)
                if visible(caller, mount_id, label, name)
            ]
        if kind == "tools":
            items = self.gateway.tool_search.shown(self.caller, items)
        return page(kind, key, items, params.get("cursor"), self.gateway.config.gateway.page_size)

    # -- routed requests ------------------------------------------------------------------

    def _check_visible(self, mount_id: str, kind: str, name: str) -> bool:
        visible = self.gateway.visible
        return visible is None or visible(self.caller, mount_id, kind, name)

    def _named_route(self, params: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
        """The mount owning a tool or prompt name, and the params with the backend's name."""
        name = params.get("name")
        names = self.gateway.namespace.tools if kind == "tool" else self.gateway.namespace.prompts
        route = names.get(name) if isinstance(name, str) else None
        if route is None or not self._check_visible(route[0], kind, route[1]):
            raise RpcError(INVALID_PARAMS, f"Unknown {kind}: {name}")
        mount_id, original = route
        return mount_id, params if original == name else {**params, "name": original}

    def _tools_call(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        if params.get("name") in self.gateway.tool_search.meta_names:
            taken = self.gateway.tool_search.take(self, request_id, params)
            if taken is None:
                return
            params = taken
        arguments = params.get("arguments")
        if arguments is not None and not isinstance(arguments, dict):
            raise RpcError(INVALID_PARAMS, "tools/call arguments must be an object")
        exposed = params.get("name")
        mount_id, params = self._named_route(params, "tool")
        if self.gateway.approvals.needed(self.caller, mount_id, params["name"]):
            self.gateway.approvals.confirm_then(
                self, request_id, exposed, params, partial(
                    self._route_or_fail, request_id, mount_id, method, params))
            return
        self._route(request_id, mount_id, method, params, self.gateway.map_tool_result)

    def _route_or_fail(self, request_id: Any, mount_id: str, method: str,
                       params: dict[str, Any]) -> None:
        try:
            self._route(request_id, mount_id, method, params, self.gateway.map_tool_result)
        except RpcError as exc:
            self._fail(request_id, exc)

    def _prompts_get(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        mount_id, params = self._named_route(params, "prompt")
        self._route(request_id, mount_id, method, params, self.gateway.map_prompt_result)

    def _resource_route(self, uri: Any) -> tuple[str, str]:
        route = self.gateway.namespace.route_uri(uri) if isinstance(uri, str) else None
        if route is None or not self._check_visible(route[0], "resource", route[1]):
            raise RpcError(RESOURCE_NOT_FOUND, f"Resource not found: {uri}", {"uri": uri})
        return route

    def _resources_read(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        mount_id, uri = self._resource_route(params.get("uri"))
        if uri != params["uri"]:
            params = {**params, "uri": uri}
        self._route(request_id, mount_id, "resources/read", params, self.gateway.map_read_result)

    def _complete(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        ref = params.get("ref")
        ns = self.gateway.namespace
        route: tuple[str, str] | None = None
        if isinstance(ref, dict) and ref.get("type") == "ref/prompt":
            name = ref.get("name")
            route = ns.prompts.get(name) if isinstance(name, str) else None
            if route is not None and self._check_visible(route[0], "prompt", route[1]):
                params = {**params, "ref": {**ref, "name": route[1]}}
            else:
                raise RpcError(INVALID_PARAMS, f"Unknown prompt: {name}")
        elif isinstance(ref, dict) and ref.get("type") == "ref/resource":
            uri = ref.get("uri")
            owner = ns.template_owner.get(uri) if isinstance(uri, str) else None
            if owner is not None and self._check_visible(owner, "resource_template", uri):
                route = (owner, uri)  # type: ignore[assignment]
            else:
                route = self._resource_route(uri)
                params = {**params, "ref": {**ref, "uri": route[1]}}
        else:
            raise RpcError(INVALID_PARAMS, "completion ref must be ref/prompt or ref/resource")
        self._route(request_id, route[0], "completion/complete", params, None)

    def _route(
        self,
        request_id: Any,
        mount_id: str,
        method: str,
        params: dict[str, Any],
        mapper: Mapper | None,
    ) -> None:
        """Send a request to a replica of one mount and relay its response."""
        gateway = self.gateway
        mount = gateway.mounts.get(mount_id)
        if mount is None:
            raise RpcError(BACKEND_UNAVAILABLE, f"Backend {mount_id!r} is unavailable")
        if gateway.warm.waits_for(mount):  # listed from the warm catalog, not up yet
            gateway.warm.route_later(self, request_id, mount, partial(
                self._route, request_id, mount_id, method, params, mapper))
            return
        limit = mount.config.max_in_flight
        if limit is not None and mount.in_flight >= limit:
            if len(mount.waiting) >= mount.config.max_queue:
                raise RpcError(BACKEND_UNAVAILABLE, f"Backend {mount_id!r} is overloaded: "
                               f"{limit} requests in flight and its queue is full",
                               {RETRY_AFTER: 1})
            mount.waiting.append(partial(self._dequeued, request_id, mount_id, method, params,
                                         mapper))
            return
        if mount.pool is not None and mount.pool.live(self._pool_key(mount)) is None:
            self._connect_isolated(request_id, mount, method, params, mapper)
            return
        cache = gateway.cache
        if cache is not None and (ttl := cache.request_ttl(mount.config, method, params)):
            self._spawn(request_id, self._cached(request_id, mount, method, params, mapper, ttl))
            return
        timeout = mount.timeout_for(method, gateway.config.gateway.request_timeout)
        retry = mount.config.retry
        if gateway.middleware is not None:
            replica = self._pick(mount)
            params, token = self._progress(request_id, params)
            request = RoutedRequest(self.caller, mount_id, method, params)
            self._spawn(request_id, self._through_middleware(
                request_id, request, replica, timeout, mapper, token))
        elif retry.attempts > 1 and may_retry(method, params, retry, mount.safe_tools):
            params, token = self._progress(request_id, params)
            self._spawn(request_id, self._with_retries(
                request_id, mount, method, params, mapper, timeout, token))
        else:
            replica = self._pick(mount)
            self._forward(request_id, mount, replica, replica.upstream,  # type: ignore[arg-type]
                          method, params, mapper, timeout)

    async def _cached(
        self, request_id: Any, mount: Mount, method: str, params: dict[str, Any],
        mapper: Mapper | None, ttl: float,
    ) -> dict[str, Any]:
        """A cacheable request: the cache answers, or the backend does and the cache keeps it
        (middleware, when there is some, wraps both)."""
        gateway = self.gateway
        cache = gateway.cache
        assert cache is not None
        replica = self._pick(mount)
        upstream = replica.upstream
        timeout = mount.timeout_for(method, gateway.config.gateway.request_timeout)
        retry = mount.config.retry
        principal = self.caller.principal
        persona = principal.persona if principal is not None else None

        async def fetch(routed: RoutedRequest) -> dict[str, Any]:
            if retry.attempts > 1 and may_retry(routed.method, routed.params, retry,
                                                mount.safe_tools):
                return await self._with_retries(request_id, mount, routed.method, routed.params,
                                                None, timeout, None)
            return await self._call_replica(mount, replica, routed.method, routed.params,
                                            timeout, request_id)

        async def call_backend(routed: RoutedRequest) -> dict[str, Any]:
            return await cache.call(mount.config, routed.method, routed.params, persona, ttl,
                                    partial(fetch, routed))

        request = RoutedRequest(self.caller, mount.mount_id, method, params)
        middleware = gateway.middleware
        result = await (call_backend(request) if middleware is None
                        else middleware(request, call_backend))
        if mapper is not None:
            mapper(self, upstream, result)  # type: ignore[arg-type]
        return result

    def _dequeued(self, request_id: Any, mount_id: str, method: str, params: dict[str, Any],
                  mapper: Mapper | None) -> None:
        if self.closed:
            return
        try:
            self._route(request_id, mount_id, method, params, mapper)
        except RpcError as exc:
            self._fail(request_id, exc)

    def _pool_key(self, mount: Mount) -> str:
        principal = self.caller.principal
        return isolation_key(mount.config.isolation, self.session_id,
                             principal.persona if principal is not None else None)

    def _connect_isolated(self, request_id: Any, mount: Mount, method: str,
                          params: dict[str, Any], mapper: Mapper | None) -> None:
        """Open this caller's own connection to an isolated mount, then route the request."""
        pool = mount.pool
        assert pool is not None
        key = self._pool_key(mount)
        gateway = self.gateway

        async def connect() -> None:
            try:
                await pool.acquire(key, gateway, gateway.startup_timeout(mount),
                                   gateway.prepare_hook())
            except RpcError as exc:
                self._fail(request_id, exc)
                return
            finally:
                self.tasks.pop(request_id, None)
            if pool.live(key) is None:
                self._fail(request_id, RpcError(BACKEND_UNAVAILABLE, mount.unavailable_reason()))
            else:
                gateway.isolated_up(mount, key)
                self._dequeued(request_id, mount.mount_id, method, params, mapper)

        self.tasks[request_id] = asyncio.get_running_loop().create_task(connect())

    def _pick(self, mount: Mount, exclude: set[Replica] | frozenset[Replica] = frozenset(),
              ) -> Replica:
        if mount.pool is not None:
            pooled = mount.pool.live(self._pool_key(mount))
            if pooled is None:
                raise RpcError(BACKEND_UNAVAILABLE, mount.unavailable_reason())
            return pooled
        replicas = mount.replicas
        sticky = mount.config.sticky
        if len(replicas) == 1 and not sticky and replicas[0].available:  # the common case
            return replicas[0]
        replica = mount.pick(self.session_id, self.affinity.get(mount.mount_id) if sticky
                             else None, exclude)
        if replica is None:
            raise RpcError(BACKEND_UNAVAILABLE, mount.unavailable_reason())
        if sticky:
            self.affinity[mount.mount_id] = replica
        return replica

    def _progress(self, request_id: Any, params: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """Swap a client's progress token for a gateway-wide one."""
        meta = params.get("_meta")
        if isinstance(meta, dict) and "progressToken" in meta:
            token = self.gateway.progress_token(self, meta["progressToken"], request_id)
            return {**params, "_meta": {**meta, "progressToken": token}}, token
        return params, None

    def _forward(
        self,
        request_id: Any,
        mount: Mount,
        replica: Replica | None,
        upstream: UpstreamSession,
        method: str,
        params: dict[str, Any],
        mapper: Mapper | None,
        timeout: float | None,
    ) -> None:
        """The hot path: send with a fresh id, relay the response object with ours put back."""
        token = None
        if "_meta" in params:
            params, token = self._progress(request_id, params)
        if replica is not None:
            replica.breaker.before_call()
        started = perf_counter() if mount.observed else 0.0
        callback = partial(self._relay, request_id, mount, replica, upstream, mapper, token,
                           started)
        metrics = self.gateway.metrics
        if metrics is not None:
            callback = metrics.track(mount.mount_id, method, callback)
        backend_id = upstream.forward(method, params, callback, timeout, (self, request_id),
                                      mount.config.max_timeout)
        if backend_id in upstream.pending:
            self.inflight[request_id] = (upstream, backend_id, token)

    def _relay(
        self, request_id: Any, mount: Mount, replica: Replica | None, upstream: UpstreamSession,
        mapper: Mapper | None, token: int | None, started: float, message: JsonMessage,
    ) -> None:
        self.inflight.pop(request_id, None)
        if token is not None:
            self.gateway.progress.pop(token, None)
        if replica is not None:
            ok = "error" not in message or not (
                isinstance(error := message["error"], dict)
                and error.get("code") in REPLICA_FAILURES)
            replica.breaker.record(ok)
            if mount.observed:
                mount.balancer.observe(replica, perf_counter() - started, ok)
        if mount.waiting:
            mount.waiting.popleft()()
        if self.closed:
            return
        if mapper is not None:
            result = message.get("result")
            if isinstance(result, dict):
                mapper(self, upstream, result)
        message["id"] = request_id
        self.peer.send(message, request_id)

    def extend(self, request_id: Any) -> None:
        """Progress arrived for a call: its timeout starts again (up to its hard maximum)."""
        entry = self.inflight.get(request_id)
        if entry is not None:
            entry[0].extend(entry[1])

    async def _call_replica(
        self, mount: Mount, replica: Replica, method: str, params: dict[str, Any],
        timeout: float | None, request_id: Any,
    ) -> dict[str, Any]:
        upstream = replica.upstream
        assert upstream is not None
        replica.breaker.before_call()
        started = perf_counter()
        ok = False
        result: dict[str, Any] | None = None
        try:
            result = await upstream.request(method, params, timeout, (self, request_id))
            ok = True
            return result
        except RpcError as exc:
            ok = exc.code not in REPLICA_FAILURES
            raise
        finally:
            replica.breaker.record(ok)
            if mount.observed:
                mount.balancer.observe(replica, perf_counter() - started, ok)
            if self.gateway.metrics is not None:
                self.gateway.metrics.record_call(mount.mount_id, method, result,
                                                 perf_counter() - started)

    async def _with_retries(
        self, request_id: Any, mount: Mount, method: str, params: dict[str, Any],
        mapper: Mapper | None, timeout: float | None, token: int | None,
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
                    replica = self._pick(mount, tried)
                    tried.add(replica)
                    result = await self._call_replica(mount, replica, method, params, timeout,
                                                      request_id)
        finally:
            if token is not None:
                self.gateway.progress.pop(token, None)
        if mapper is not None:
            mapper(self, replica.upstream, result)  # type: ignore[arg-type]
        return result

    async def _through_middleware(
        self, request_id: Any, request: RoutedRequest, replica: Replica, timeout: float | None,
        mapper: Mapper | None, token: int | None,
    ) -> dict[str, Any]:
        mount = self.gateway.mounts[request.mount_id]

        async def call_backend(routed: RoutedRequest) -> dict[str, Any]:
            return await self._call_replica(mount, replica, routed.method, routed.params,
                                            timeout, request_id)

        assert self.gateway.middleware is not None
        try:
            result = await self.gateway.middleware(request, call_backend)
        finally:
            if token is not None:
                self.gateway.progress.pop(token, None)
        if mapper is not None:
            mapper(self, replica.upstream, result)  # type: ignore[arg-type]
        return result

    def _cancelled(self, request_id: Any, reason: Any) -> None:
        entry = self.inflight.pop(request_id, None)
        if entry is not None:
            upstream, backend_id, token = entry
            upstream.cancel(backend_id, str(reason or "cancelled by the client"))
            if token is not None:
                self.gateway.progress.pop(token, None)
        task = self.tasks.pop(request_id, None)
        if task is not None:
            task.cancel()

    # -- subscriptions --------------------------------------------------------------------

    def _subscribe(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        route = self._resource_route(params.get("uri"))
        self._spawn(request_id, self.gateway.subscribe(self, route))

    def _unsubscribe(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        route = self._resource_route(params.get("uri"))
        self._spawn(request_id, self.gateway.unsubscribe(self, route))

    # -- tasks ----------------------------------------------------------------------------

    def _task_call(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        task_id = params.get("taskId")
        entry = self.gateway.tasks.get(task_id) if isinstance(task_id, str) else None
        if entry is None or entry.session is not self:
            raise RpcError(INVALID_PARAMS, f"Unknown task: {task_id}")
        params = {**params, "taskId": entry.backend_task_id}
        mount = self.gateway.mounts.get(entry.mount_id)
        if mount is None or not entry.upstream.alive:
            raise RpcError(BACKEND_UNAVAILABLE, f"Backend {entry.mount_id!r} is unavailable")
        if method == "tasks/result":  # waits for the task itself: no timeout of its own
            self._forward(request_id, mount, None, entry.upstream, method, params,
                          self.gateway.map_tool_result, None)
        else:
            timeout = mount.timeout_for(method, self.gateway.config.gateway.request_timeout)
            self._forward(request_id, mount, None, entry.upstream, method, params,
                          self.gateway.map_task_object, timeout)

    def _tasks_list(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        self._spawn(request_id, self.gateway.list_tasks(self, params.get("cursor")))

    # -- server -> client requests --------------------------------------------------------

    def relay_request(self, upstream: UpstreamSession, message: JsonMessage, related: Any) -> None:
        """Send a backend's request (sampling, elicitation, roots) on to this client."""
        method = message.get("method")
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        missing = self._missing_capability(method, params)
        if missing:
            upstream.respond(jsonrpc.error(message.get("id"), RpcError(
                METHOD_NOT_FOUND, f"The connected client does not support {missing}")))
            return
        self._reverse_ids += 1
        client_id = self._reverse_ids
        self.reverse[client_id] = (upstream, message.get("id"))
        self.gateway.reverse[(upstream, message.get("id"))] = (self, client_id)
        if method == "elicitation/create" and isinstance(params.get("elicitationId"), str):
            params = {**params, "elicitationId": self.gateway.map_elicitation(
                self, upstream, params["elicitationId"])}
        self.send(jsonrpc.request(client_id, method, params), related)  # type: ignore[arg-type]

    def _missing_capability(self, method: Any, params: dict[str, Any]) -> str | None:
        caps = self.client_capabilities
        if method == "sampling/createMessage":
            sampling = caps.get("sampling")
            if not isinstance(sampling, dict):
                return "sampling"
            if params.get("tools") and "tools" not in sampling:
                return "sampling with tools"
        elif method == "elicitation/create":
            elicitation = caps.get("elicitation")
            if not isinstance(elicitation, dict):
                return "elicitation"
            mode = params.get("mode", "form")
            if mode == "url" and "url" not in elicitation:
                return "URL elicitation"
            if mode == "form" and elicitation and "form" not in elicitation:
                return "form elicitation"
        elif method == "roots/list" and not isinstance(caps.get("roots"), dict):
            return "roots"
        return None

    def _client_response(self, message: JsonMessage) -> None:
        entry = self.reverse.pop(message.get("id"), None)  # type: ignore[arg-type]
        if entry is None:
            log.debug("session %s answered an unknown request %r", self.session_id,
                      message.get("id"))
            return
        upstream, backend_id = entry
        self.gateway.reverse.pop((upstream, backend_id), None)
        message["id"] = backend_id
        upstream.respond(message)

    async def ask(self, method: str, params: dict[str, Any]) -> JsonMessage:
        """Send the gateway's own request to this client; its answer (a result or an error)."""
        answer = _Answer()
        self._reverse_ids += 1
        client_id = self._reverse_ids
        self.reverse[client_id] = (answer, None)  # type: ignore[assignment]
        self.send(jsonrpc.request(client_id, method, params))
        try:
            return await answer.future
        finally:
            self.reverse.pop(client_id, None)

    def cancel_reverse(self, client_id: int, reason: Any) -> None:
        """The backend withdrew a request it made through this session."""
        if self.reverse.pop(client_id, None) is not None:
            params: dict[str, Any] = {"requestId": client_id}
            if reason:
                params["reason"] = reason
            self.send(jsonrpc.notification("notifications/cancelled", params))

    # -- teardown -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """The client went away: cancel its work and release what it held."""
        if self.closed:
            return
        self.closed = True
        for request_id in list(self.inflight):
            self._cancelled(request_id, "client disconnected")
        for task in list(self.tasks.values()):
            task.cancel()
        for client_id, (upstream, backend_id) in list(self.reverse.items()):
            self.gateway.reverse.pop((upstream, backend_id), None)
            upstream.respond(jsonrpc.error(backend_id, RpcError(
                BACKEND_UNAVAILABLE, "the client that was asked has disconnected")))
            del self.reverse[client_id]
        await self.gateway.session_closed(self)


class _Answer:
    """Stands in for a backend in the reverse table: the client's answer resolves a future."""

    def __init__(self) -> None:
        self.future: asyncio.Future[JsonMessage] = asyncio.get_running_loop().create_future()

    def respond(self, message: JsonMessage) -> None:
        """Take the client's answer (or the error sent when the client went away)."""
        if not self.future.done():
            self.future.set_result(message)


#: request method -> its handler (a table per class, not bound methods per session)
_REQUESTS: dict[str, RequestHandler] = {
    "initialize": FrontSession._initialize,
    "ping": FrontSession._ping,
    "tools/list": FrontSession._list,
    "prompts/list": FrontSession._list,
    "resources/list": FrontSession._list,
    "resources/templates/list": FrontSession._list,
    "tools/call": FrontSession._tools_call,
    "prompts/get": FrontSession._prompts_get,
    "resources/read": FrontSession._resources_read,
    "completion/complete": FrontSession._complete,
    "resources/subscribe": FrontSession._subscribe,
    "resources/unsubscribe": FrontSession._unsubscribe,
    "logging/setLevel": FrontSession._set_level,
    "tasks/get": FrontSession._task_call,
    "tasks/result": FrontSession._task_call,
    "tasks/cancel": FrontSession._task_call,
    "tasks/list": FrontSession._tasks_list,
}
#: the types of a request id (exactly: a bool is no id)
_ID_TYPES = frozenset((str, int))
#: what a session serves before ``initialize``
_BEFORE_INITIALIZE = {method: _REQUESTS[method] for method in ("initialize", "ping")}


def _answerable(request_id: Any) -> str | int | None:
    """A request id a response may carry (a string or an integer), else None."""
    if isinstance(request_id, str | int) and not isinstance(request_id, bool):
        return request_id
    return None
