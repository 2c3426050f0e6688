"""The 2026-07-28 adapter: one stateless request, checked, built and answered in its era.

A modern request names its version, the client's capabilities and its log level in its own
``_meta``; nothing is remembered between requests. :class:`ModernAdapter` checks that
envelope, answers ``server/discover`` and lists itself, and routes the rest through the same
dispatcher as the handshake era, with an :class:`Exchange` as the request's sink. The
exchange delivers the result with ``resultType``, ``serverInfo`` and, where the era asks for
them, ``ttlMs`` and ``cacheScope``; it turns a backend's request for input into an
``input_required`` answer (:mod:`vmcp.gateway.bridge`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

from vmcp import __version__
from vmcp.auth.base import Principal
from vmcp.gateway.dispatch import Dispatcher
from vmcp.protocol import jsonrpc
from vmcp.protocol.eras import (
    ALL_VERSIONS,
    CACHEABLE_METHODS,
    CLIENT_CAPABILITIES,
    CLIENT_INFO,
    LOG_LEVEL,
    MODERN_REQUESTS,
    MODERN_VERSIONS,
    PROTOCOL_VERSION,
    SERVER_INFO,
    UNSUPPORTED_PROTOCOL_VERSION,
    modern_version,
    unsupported_version_data,
)
from vmcp.protocol.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    RESOURCE_NOT_FOUND,
    RpcError,
)
from vmcp.routing.middleware import Caller
from vmcp.routing.request import LEVEL_RANK, MODERN, Request
from vmcp.transports.base import JsonMessage

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway
    from vmcp.registry.mount import Replica
    from vmcp.upstream.session import UpstreamSession

log = logging.getLogger("vmcp.gateway")

#: what a modern list or read result says when no rule gives a lifetime
_NO_TTL = 0


def caller_key_of(principal: Principal | None) -> str:
    """An auth context as a string: the principal and its persona ("" for none)."""
    if principal is None:
        return ""
    return f"{principal.name}\x00{principal.persona or ''}"


def caller_key(caller: Caller) -> str:
    """Whom a sealed state is for: the caller's auth context."""
    return caller_key_of(caller.principal)


class ModernAdapter:
    """Serves the modern requests of every front, on the connection they arrive on."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def server_info(self) -> dict[str, Any]:
        """The gateway's ``Implementation``, as results carry it in their ``_meta``."""
        return {"name": self.gateway.config.gateway.name, "title": "vmcp gateway",
                "version": __version__}

    def serve(self, origin: ModernOrigin, request_id: Any, method: str,
              params: dict[str, Any]) -> None:
        """Serve one modern request that came from ``origin``; a request it refuses (or a
        bug of its handler) is answered with an error, and costs only that request."""
        try:
            self.handle(origin, request_id, method, params)
        except RpcError as exc:
            origin.exchanges.pop(request_id, None)
            origin.send(jsonrpc.error(request_id, exc), request_id)
        except Exception as exc:
            log.exception("request %r (%s) failed", request_id, method)
            origin.exchanges.pop(request_id, None)
            origin.send(jsonrpc.error(request_id, RpcError(
                INTERNAL_ERROR, f"Internal error: {exc}")), request_id)

    def handle(self, session: ModernOrigin, request_id: Any, method: str,
               params: dict[str, Any]) -> None:
        """Serve one modern request that came from ``session`` (a connection's session, or
        a stateless request's entry).

        :raises RpcError: the request is refused (its envelope, its method).
        """
        meta = params.get("_meta")
        meta = meta if isinstance(meta, dict) else {}
        version = modern_version(params)
        if method == "server/discover" and version is None:
            version = MODERN_VERSIONS[-1]
        if version not in MODERN_VERSIONS:
            if isinstance(version, str) or version is None:
                raise RpcError(UNSUPPORTED_PROTOCOL_VERSION,
                               f"Unsupported protocol version: {version!r}",
                               unsupported_version_data(version))
            raise RpcError(INVALID_PARAMS, f"_meta[{PROTOCOL_VERSION!r}] must be a string")
        capabilities = meta.get(CLIENT_CAPABILITIES, {} if method == "server/discover" else None)
        if not isinstance(capabilities, dict):
            raise RpcError(INVALID_PARAMS, f"_meta[{CLIENT_CAPABILITIES!r}] is required and "
                           "must be an object")
        level = meta.get(LOG_LEVEL)
        if level is not None and level not in LEVEL_RANK:
            raise RpcError(INVALID_PARAMS, f"Invalid log level: {level!r}")
        if method not in MODERN_REQUESTS:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
        params = _without_envelope(params, meta)
        exchange = Exchange(self, session, request_id, method)
        principal = session.caller.principal
        # a stateless request's caller is its auth context, not the connection it came on:
        # a session-isolated mount keeps one connection per auth context for modern callers
        # (a transient HTTP session must not take a waiting call's connection with it)
        caller = Caller(f"modern:{caller_key_of(principal)}", principal)
        request = Request(request_id, caller, exchange, MODERN, capabilities,
                          LEVEL_RANK[level] if level is not None else None)
        session.exchanges[request_id] = exchange
        gateway = self.gateway
        if method == "server/discover":
            exchange.complete(request, self.discover())
        elif method == "subscriptions/listen":
            gateway.listens.open(request, session, params)
        elif method in _LISTS:
            dispatch = gateway.dispatch
            if dispatch.list_is_stale(method):
                request.spawn(dispatch.fresh_list_page(caller, method, params))
            else:
                exchange.complete(request, dispatch.list_page(caller, method, params))
        elif "requestState" in params and method in _RESUMABLE:
            gateway.bridge.resume(request, method, params)
        else:
            ROUTED[method](gateway.dispatch, request, params)

    def discover(self) -> dict[str, Any]:
        """The ``server/discover`` result: both eras' versions and what the gateway serves."""
        gateway = self.gateway
        result: dict[str, Any] = {
            "supportedVersions": list(ALL_VERSIONS),
            "capabilities": self.capabilities(),
        }
        if gateway.config.gateway.instructions:
            result["instructions"] = gateway.config.gateway.instructions
        return result

    def capabilities(self) -> dict[str, Any]:
        """The front capabilities in the modern era's shape (no core ``tasks``)."""
        caps = dict(self.gateway.front_capabilities())
        caps.pop("tasks", None)
        return caps

    def list_lifetime(self) -> tuple[int, str]:
        """``ttlMs`` and ``cacheScope`` of the gateway's aggregated lists and discovery.

        A list is re-read at most every ``list_ttl`` seconds (at once when a backend
        announces a change), so that is how long a client may keep it; it is ``private``
        whenever what a caller sees depends on who the caller is.
        """
        gateway = self.gateway
        ttl = int(gateway.config.gateway.list_ttl * 1000)
        private = gateway.visible is not None or gateway.auth_required
        return ttl, "private" if private else "public"


class ExchangePeer(Protocol):
    """Where an exchange's messages go: the session of the connection its request came on,
    a stateless request's entry (:mod:`vmcp.gateway.stateless`), or a stand-in that sends
    them to the instance a retry came to (see :mod:`vmcp.gateway.resume_remote`)."""

    #: request id -> the exchange of each modern request in flight on it
    exchanges: dict[Any, Exchange]

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Deliver a message (a response, or a notification of request ``related_to``)."""


class ModernOrigin(ExchangePeer, Protocol):
    """What a modern request comes from: an :class:`ExchangePeer` that knows its caller."""

    #: who sends the requests (its principal is the requests' auth context)
    caller: Caller


class Exchange:
    """The sink of one modern request: its response (and what belongs to it) goes on the
    connection it came on, related to its id."""

    __slots__ = (
        "adapter",
        "affinity",
        "closed",
        "inflight",
        "method",
        "request_id",
        "session",
        "tasks",
    )

    def __init__(self, adapter: ModernAdapter, session: ExchangePeer, request_id: Any,
                 method: str) -> None:
        self.adapter = adapter
        self.session = session
        self.request_id = request_id
        self.method = method
        self.closed = False
        self.inflight: dict[Any, tuple[UpstreamSession, int, int | None]] = {}
        self.tasks: dict[Any, asyncio.Task[None]] = {}
        self.affinity: dict[str, Replica] = {}

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Deliver a notification of this request (progress, a log line) on its stream."""
        if not self.closed:
            self.session.send(message, self.request_id)

    def deliver(self, request: Request, message: JsonMessage) -> None:
        """Deliver the backend's (or the gateway's) response in the modern shape."""
        if self.closed:
            return
        result = message.get("result")
        if result is None:
            _modern_error(message.get("error"))
        elif isinstance(result, dict):
            if result.get("resultType") == "input_required":
                self.adapter.gateway.bridge.pass_through(request, result)
            else:
                self._stamp(request, result)
        self._finish()
        self.session.send(message, request.id)

    def complete(self, request: Request, result: dict[str, Any]) -> None:
        """Answer with a result the gateway made itself."""
        self.deliver(request, jsonrpc.result(request.id, result))

    def _stamp(self, request: Request, result: dict[str, Any]) -> None:
        result.setdefault("resultType", "complete")
        meta = result.get("_meta")
        if not isinstance(meta, dict):
            meta = result["_meta"] = {}
        meta.setdefault(SERVER_INFO, self.adapter.server_info())
        if self.method in CACHEABLE_METHODS and "ttlMs" not in result:
            if self.method == "resources/read":
                ttl, scope = self._read_lifetime(request)
            else:
                ttl, scope = self.adapter.list_lifetime()
            result["ttlMs"] = ttl
            result["cacheScope"] = scope

    def _read_lifetime(self, request: Request) -> tuple[int, str]:
        """How long a read may be kept: the gateway cache's rule for it, and ``private``
        (a handshake-era backend does not say whom a resource is for)."""
        gateway = self.adapter.gateway
        mount = gateway.mounts.get(request.mount_id or "")
        cache = gateway.cache
        if mount is None or cache is None:
            return _NO_TTL, "private"
        ttl = cache.request_ttl(mount.config, "resources/read", {})
        return int((ttl or 0) * 1000), "private"

    def fail(self, request_id: Any, err: RpcError) -> None:
        """Answer with an error."""
        if self.closed:
            return
        self._finish()
        message = jsonrpc.error(request_id, err)
        _modern_error(message.get("error"))
        self.session.send(message, request_id)

    def relay_request(self, request: Request | None, upstream: UpstreamSession,
                      message: JsonMessage) -> None:
        """A backend asked for input while serving this request: answer ``input_required``."""
        self.adapter.gateway.bridge.ask(request, self, upstream, message)

    def hand_over(self) -> None:
        """This exchange's request was answered but its backend call goes on elsewhere (a
        waiting call): forget it here without cancelling it."""
        self.inflight = {}
        self.tasks = {}
        self._finish()

    def cancel(self, reason: str) -> None:
        """The client withdrew the request (or went away)."""
        if self.closed:
            return
        self.adapter.gateway.router.cancel(self, self.request_id, reason)
        self._finish()

    def _finish(self) -> None:
        self.closed = True
        self.session.exchanges.pop(self.request_id, None)


def _modern_error(error: Any) -> None:
    """Say an error in the modern era's terms: an unknown resource is -32602 there (SEP-2164;
    the handshake era's -32002), with the URI kept in ``data``."""
    if isinstance(error, dict) and error.get("code") == RESOURCE_NOT_FOUND:
        error["code"] = INVALID_PARAMS


def _without_envelope(params: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The params as a backend gets them: the era envelope is the client's to the gateway
    (each backend gets its own era's from its connection); the rest of ``_meta`` stays."""
    params = params.copy()
    params.pop("_meta", None)
    if not meta.keys() <= _ENVELOPE:  # most requests' _meta is the envelope alone
        params["_meta"] = {key: value for key, value in meta.items() if key not in _ENVELOPE}
    return params


_ENVELOPE = frozenset((PROTOCOL_VERSION, CLIENT_CAPABILITIES, CLIENT_INFO, LOG_LEVEL))
_LISTS = frozenset(("tools/list", "prompts/list", "resources/list", "resources/templates/list"))
_RESUMABLE = frozenset(("tools/call", "prompts/get", "resources/read"))


#: routed method -> how the dispatcher serves it
ROUTED = {
    "tools/call": Dispatcher.tools_call,
    "prompts/get": Dispatcher.prompts_get,
    "resources/read": Dispatcher.resources_read,
    "completion/complete": Dispatcher.complete,
}
