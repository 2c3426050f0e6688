"""The handshake-era adapter: one connected client, its negotiated state, and the dispatch
of what it sends.

A session answers ``initialize``, ``ping`` and ``logging/setLevel`` itself, builds a
:class:`~vmcp.routing.request.Request` for everything it routes (with the capabilities and
log level it negotiated) and is the sink of those requests: their responses, progress and
logs, and the backends' sampling, elicitation and roots requests, which it relays as
server->client requests. A request in the 2026-07-28 era that arrives on the same
connection is handed to the modern adapter (:mod:`vmcp.gateway.modern`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from vmcp import __version__
from vmcp.auth.base import Principal
from vmcp.protocol import jsonrpc
from vmcp.protocol.eras import PROTOCOL_VERSION
from vmcp.protocol.errors import (
    BACKEND_UNAVAILABLE,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    RpcError,
)
from vmcp.protocol.versions import negotiate
from vmcp.routing.middleware import Caller
from vmcp.routing.request import (
    HANDSHAKE,
    LEVEL_RANK,
    LOG_LEVELS,
    Request,
    refused_for_capability,
)
from vmcp.transports.base import FrontPeer, JsonMessage
from vmcp.upstream.session import UpstreamSession

if TYPE_CHECKING:
    from vmcp.cluster.record import SessionRecord
    from vmcp.gateway.frontsnapshot import SnapshotKeeper
    from vmcp.gateway.gateway import Gateway
    from vmcp.registry.mount import Replica

log = logging.getLogger("vmcp.gateway")

RequestHandler = Callable[["FrontSession", Any, dict[str, Any], str], None]


class FrontSession:
    """One front client connection (a :class:`~vmcp.routing.request.Sink`)."""

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
        self.reverse: dict[int | str, tuple[UpstreamSession, Any]] = {}
        self.affinity: dict[str, Replica] = {}
        self.subscriptions: set[tuple[str, str]] = set()
        #: request id -> what serves a 2026-07-28 request of this connection (an exchange,
        #: or an open listen), for cancellation
        self.exchanges: dict[Any, Any] = {}
        self._reverse_ids = 0
        #: called when what a shared session's record keeps changed (log level,
        #: subscriptions); set by a front that shares the session with other instances
        self.on_change: Callable[[], None] | None = None
        #: the id the deployment's instances know this session by, when a front shares it
        #: with them (its tasks may live on any of them); None otherwise
        self.shared_id: str | None = None
        #: keeps this instance's copy of a shared session from expiring while a request
        #: another instance forwarded for it is served here (given by that front)
        self.hold: Callable[[], AbstractContextManager[None]] | None = None
        #: told of this session's ``initialize`` answer and first pages of ``tools/list``
        #: (the stdio front's, for the next fast start); None for other sessions
        self.observer: SnapshotKeeper | None = None
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
        if "method" not in message or "id" not in message:  # what classify calls a request
            kind = jsonrpc.classify(message)
            if kind is jsonrpc.NOTIFICATION:
                self._notification(message["method"], message.get("params"))
            elif kind is jsonrpc.RESPONSE:
                self._client_response(message)
            else:
                request_id = jsonrpc.answerable_id(message.get("id"))
                self.fail(request_id, RpcError(
                    INVALID_REQUEST, "Invalid request: neither a request, a notification nor "
                    "a response (no method, result or error)"))
            return
        method, request_id = message["method"], message["id"]
        if type(method) is not str or type(request_id) not in _ID_TYPES:
            self.fail(jsonrpc.answerable_id(request_id), jsonrpc.bad_method_or_id())
            return
        params = message.get("params")
        if params is None:
            params = {}
        elif not isinstance(params, dict):
            self.fail(request_id, RpcError(INVALID_PARAMS, "params must be an object"))
            return
        meta = params.get("_meta")
        if ((meta is not None and type(meta) is dict and PROTOCOL_VERSION in meta)
                or method == "server/discover"):
            self._modern(request_id, method, params)
            return
        handler = self._requests.get(method)
        if handler is None:
            if method in _REQUESTS:
                self.fail(request_id, RpcError(
                    INVALID_REQUEST, f"Invalid request: {method} before initialize (only ping "
                    "may precede it)"))
            else:
                self.fail(request_id, RpcError(METHOD_NOT_FOUND, f"Method not found: {method}"))
            return
        try:
            handler(self, request_id, params, method)
        except RpcError as exc:
            self.fail(request_id, exc)
        except Exception as exc:  # a handler's bug costs this request only, not the session
            log.exception("request %r (%s) failed", request_id, method)
            self.fail(request_id, RpcError(INTERNAL_ERROR, f"Internal error: {exc}"))

    def _modern(self, request_id: Any, method: str, params: dict[str, Any]) -> None:
        """A 2026-07-28 request: the modern adapter serves it, on this connection."""
        self.gateway.modern.serve(self, request_id, method, params)

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

    def fail(self, request_id: Any, err: RpcError) -> None:
        """Answer one of this session's requests with an error (dropped once closed)."""
        if not self.closed:
            self.peer.send(jsonrpc.error(request_id, err), request_id)

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Send a message the gateway originates or relays (dropped once closed)."""
        if not self.closed:
            self.peer.send(message, related_to)

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
        if self.observer is not None:
            self.observer.initialized(params.get("protocolVersion"), result)

    def _ping(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        self._reply(request_id, {})

    def _set_level(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        level = params.get("level")
        if level not in LEVEL_RANK:
            raise RpcError(INVALID_PARAMS, f"Invalid log level: {level!r}")
        self.log_rank = LEVEL_RANK[level]
        self.gateway.log_levels_changed()
        self._reply(request_id, {})
        if self.on_change is not None:
            self.on_change()

    def wants_log(self, level: Any) -> bool:
        """True when a log notification at ``level`` passes this client's ``setLevel``."""
        return self.log_rank is None or LEVEL_RANK.get(level, 0) >= self.log_rank

    # -- requests -----------------------------------------------------------------------

    def request(self, request_id: Any) -> Request:
        """A request of this session, with the session's negotiated capabilities and level."""
        return Request(request_id, self.caller, self, HANDSHAKE, self.client_capabilities,
                       self.log_rank)

    def _list(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        dispatch = self.gateway.dispatch
        if dispatch.list_is_stale(method):
            self.request(request_id).spawn(dispatch.fresh_list_page(self.caller, method, params))
            return
        result = dispatch.list_page(self.caller, method, params)
        self._reply(request_id, result)
        if self.observer is not None and method == "tools/list" and "cursor" not in params:
            self.observer.listed(result)

    def _tools_call(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        self.gateway.dispatch.tools_call(  # self.request(request_id), inline: the hot path
            Request(request_id, self.caller, self, HANDSHAKE, self.client_capabilities,
                    self.log_rank), params)

    def _prompts_get(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        self.gateway.dispatch.prompts_get(self.request(request_id), params)

    def _resources_read(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        self.gateway.dispatch.resources_read(self.request(request_id), params)

    def _complete(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        self.gateway.dispatch.complete(self.request(request_id), params)

    def deliver(self, request: Request, message: JsonMessage) -> None:
        """Send the response to one of this session's requests (a 2026-07-28 backend's
        ``input_required`` is first answered by asking this client)."""
        if self.closed:
            return
        result = message.get("result")
        if type(result) is dict and result.get("resultType") == "input_required":
            self.gateway.bridge.ask_session(request, self, result)
            return
        self.peer.send(message, request.id)

    def _cancelled(self, request_id: Any, reason: Any) -> None:
        why = str(reason or "cancelled by the client")
        exchange = self.exchanges.pop(request_id, None)
        if exchange is not None:
            exchange.cancel(why)
            return
        self.gateway.router.cancel(self, request_id, why)

    # -- subscriptions --------------------------------------------------------------------

    def _subscribe(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        route = self.gateway.dispatch.resource_route(self.caller, params.get("uri"))
        self.request(request_id).spawn(self._changing(self.gateway.subscribe(self, route)))

    def _unsubscribe(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        route = self.gateway.dispatch.resource_route(self.caller, params.get("uri"))
        self.request(request_id).spawn(self._changing(self.gateway.unsubscribe(self, route)))

    async def _changing(self, work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        """Await a change of the subscriptions, then say so to a sharing front."""
        result = await work
        if self.on_change is not None:
            self.on_change()
        return result

    # -- shared sessions ------------------------------------------------------------------

    def shared_fields(self) -> dict[str, Any]:
        """What a :class:`~vmcp.cluster.record.SessionRecord` keeps of this session."""
        return {
            "protocol_version": self.protocol_version,
            "client_capabilities": self.client_capabilities,
            "client_info": self.client_info,
            "log_level": LOG_LEVELS[self.log_rank] if self.log_rank is not None else None,
            "subscriptions": sorted(self.subscriptions),
        }

    def share_as(self, shared_id: str, hold: Callable[[], AbstractContextManager[None]]
                 ) -> None:
        """Be known to the deployment's other instances as ``shared_id`` (see
        :class:`~vmcp.transports.base.FrontSessionHandle`)."""
        self.shared_id, self.hold = shared_id, hold
        self.gateway.shared_sessions[shared_id] = self

    def restore(self, record: SessionRecord) -> None:
        """Serve, initialized, a session another instance opened, as its record says (again
        when the record changed). Its subscriptions are :meth:`follow`'s business."""
        self.client_capabilities = record.client_capabilities
        self.client_info = record.client_info
        self.protocol_version = record.protocol_version
        self.initialized = True
        self._requests = _REQUESTS
        rank = LEVEL_RANK.get(record.log_level) if record.log_level is not None else None
        if rank != self.log_rank:
            self.log_rank = rank
            self.gateway.log_levels_changed()

    def follow(self, routes: list[tuple[str, str]]) -> None:
        """Hold exactly these resource subscriptions (this instance delivers the session's
        standalone stream, so its own backends must send it their updates)."""
        wanted = set(routes)
        for route in wanted - self.subscriptions:
            self.gateway.spawn(_quietly(self.gateway.subscribe(self, route)))
        for route in self.subscriptions - wanted:
            self.gateway.spawn(_quietly(self.gateway.unsubscribe(self, route)))

    # -- tasks ----------------------------------------------------------------------------

    def _task_call(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        remote = self.gateway.remote_tasks
        if (remote is not None and self.shared_id is not None
                and (owner := remote.owner(params.get("taskId"))) is not None):
            remote.forward(self.request(request_id), self.shared_id, owner, method, params)
        else:
            self.gateway.serve_task(self.request(request_id), method, params)

    def _tasks_list(self, request_id: Any, params: dict[str, Any], method: str) -> None:
        remote = self.gateway.remote_tasks
        cursor = params.get("cursor")
        self.request(request_id).spawn(
            self.gateway.list_tasks(self.session_id, cursor)
            if remote is None or self.shared_id is None
            else remote.list_everywhere(self.session_id, self.shared_id, cursor))

    # -- server -> client requests --------------------------------------------------------

    def relay_request(
        self, request: Request | None, upstream: UpstreamSession, message: JsonMessage
    ) -> None:
        """Send a backend's request (sampling, elicitation, roots) on to this client."""
        method = message.get("method")
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        if refused_for_capability(self.client_capabilities, upstream, message):
            return
        client_id = self._client_id()
        self.reverse[client_id] = (upstream, message.get("id"))
        self.gateway.reverse[(upstream, message.get("id"))] = (self, client_id)
        if method == "elicitation/create" and isinstance(params.get("elicitationId"), str):
            params = {**params, "elicitationId": self.gateway.map_elicitation(
                self, upstream, params["elicitationId"])}
        self.send(jsonrpc.request(client_id, method, params),  # type: ignore[arg-type]
                  request.id if request is not None else None)

    def _client_id(self) -> int | str:
        """A new id for a request to this client; with a cluster it names this instance, so
        that an answer reaching another instance is sent back here."""
        self._reverse_ids += 1
        cluster = self.gateway.cluster
        return self._reverse_ids if cluster is None else f"{cluster.instance}.{self._reverse_ids}"

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
        client_id = self._client_id()
        self.reverse[client_id] = (answer, None)  # type: ignore[assignment]
        self.send(jsonrpc.request(client_id, method, params))
        try:
            return await answer.future
        finally:
            self.reverse.pop(client_id, None)

    def cancel_reverse(self, client_id: int | str, reason: Any) -> None:
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
        for exchange in list(self.exchanges.values()):
            exchange.cancel("client disconnected")
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


async def _quietly(work: Awaitable[Any]) -> None:
    """Await a subscription change another instance asked for; its failure is only logged."""
    try:
        await work
    except RpcError as exc:
        log.info("could not follow a shared subscription: %s", exc)


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
_ID_TYPES = jsonrpc.ID_TYPES
#: what a session serves before ``initialize``
_BEFORE_INITIALIZE = {method: _REQUESTS[method] for method in ("initialize", "ping")}


