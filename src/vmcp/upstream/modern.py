"""One client session to a backend of the 2026-07-28 ("modern", stateless) era.

There is no handshake: ``server/discover`` gives the capabilities, ``serverInfo`` and
instructions, and every request carries the protocol version, the client capabilities the
gateway declares and its ``clientInfo`` in ``_meta``. The handshake-era requests the gateway
still makes of every backend are mapped here: ``ping`` becomes ``server/discover`` (a real
round trip for health checks), ``logging/setLevel`` becomes the log level stamped on requests
that name none, and ``resources/(un)subscribe`` change the set of URIs of the session's
``subscriptions/listen``. That listen is held open for as long as the session lives (re-opened
when the backend ends it) and what arrives on it reaches :class:`UpstreamEvents` exactly like a
handshake-era backend's server-wide notifications.

Results (``resultType``, ``ttlMs``, ``cacheScope``, ``inputRequests``, ``requestState``) are
passed on untouched, except that the backend's ``serverInfo`` is taken out of their ``_meta``
(to a front client, the server is the gateway).

With ``probe`` set (a mount's ``era = "auto"``) the session finds out the era first, by the
spec's rules: a ``DiscoverResult`` listing a modern version, or -32022 naming one, means modern;
every other error, or a timeout, means the handshake era, and the session then performs the
``initialize`` handshake on the same connection and behaves like :class:`UpstreamSession`.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from vmcp.protocol import jsonrpc
from vmcp.protocol.eras import (
    CLIENT_CAPABILITIES,
    CLIENT_INFO,
    LOG_LEVEL,
    MODERN_VERSIONS,
    PROTOCOL_VERSION,
    SERVER_INFO,
    SUBSCRIPTION_ID,
    UNSUPPORTED_PROTOCOL_VERSION,
)
from vmcp.protocol.errors import BACKEND_UNAVAILABLE, RpcError
from vmcp.protocol.versions import HANDSHAKE_VERSIONS
from vmcp.transports.base import ConnectionClosed, JsonMessage, Related
from vmcp.upstream.session import NO_RELATION, ResponseCallback, UpstreamSession

log = logging.getLogger("vmcp.upstream")

#: the longest an ``auto`` probe waits for ``server/discover`` before falling back
DISCOVER_TIMEOUT = 10.0
#: the longest pause before a listen the backend refused or broke is opened again
MAX_LISTEN_DELAY = 30.0
#: a listen that ends sooner than this after it was opened is re-opened only after a pause
MIN_LISTEN_LIFE = 1.0
#: notifications a modern backend may receive (on HTTP, cancelling is closing the stream)
_SENDABLE_NOTIFICATIONS = frozenset(("notifications/cancelled",))


class EraProbeError(RpcError):
    """The backend speaks only modern versions vmcp does not."""


class ModernUpstreamSession(UpstreamSession):
    """The client side of one connection to a backend reached in the 2026-07-28 era."""

    def __init__(self, *args: Any, probe: bool = False, **kwargs: Any) -> None:
        """:param probe: find out the era first (``auto``); otherwise it is modern."""
        super().__init__(*args, **kwargs)
        self.probe = probe
        #: True once an ``auto`` probe found a handshake-era backend: from then on this is
        #: a plain :class:`UpstreamSession`
        self.fallback = False
        self.protocol_version = MODERN_VERSIONS[-1]
        #: the ``_meta`` every request carries, built once (and again when the default log
        #: level changes); never mutated, so requests may share it
        self._meta: dict[str, Any] = {}
        #: the part of it a request's own ``_meta`` may not override
        self._fixed: dict[str, Any] = {}
        #: resource URIs subscribed to through the listen
        self.subscribed: set[str] = set()
        #: the backend-side id of the listen held open (None: none): a string, which a
        #: backend that tags its notifications with the id as text still matches exactly
        self.listen_id: str | None = None
        #: what the backend said it honours of the current listen
        self.listen_acknowledged: dict[str, Any] | None = None
        self._listen_delay = 0.0
        self._listen_opened = 0.0
        self._adopted = False

    @property
    def modern(self) -> bool:
        """True when the backend is spoken to in the modern era."""
        return not self.fallback

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, timeout: float) -> None:
        """Start reading, then ``server/discover`` (or, after a failed probe, ``initialize``)."""
        self._build_meta(self.protocol_version, None)
        self.begin_reading()
        if not self.probe:
            self._adopt(await self._discover(self.protocol_version, timeout))
            return
        version = self.protocol_version
        for attempt in range(2):
            try:
                result = await self._discover(version, min(timeout, DISCOVER_TIMEOUT))
            except RpcError as exc:
                mutual = _mutual_modern(exc)
                if mutual is not None and attempt == 0:
                    version = mutual
                    self._build_meta(version, None)
                    continue
                if exc.code == UNSUPPORTED_PROTOCOL_VERSION and not _names_handshake(exc):
                    raise EraProbeError(BACKEND_UNAVAILABLE, "backend speaks only protocol "
                                        f"versions vmcp does not: {exc.message}") from exc
                log.debug("backend %s: server/discover failed (%s); using initialize",
                          self.mount_id, exc.message)
                await self._fall_back(timeout)
                return
            if not any(v in MODERN_VERSIONS for v in _strings(result.get("supportedVersions"))):
                await self._fall_back(timeout)  # a discover answer advertising no modern version
                return
            self._adopt(result)
            return

    async def _discover(self, version: str, timeout: float) -> dict[str, Any]:
        self.protocol_version = version
        return await self.request("server/discover", None, timeout)

    async def _fall_back(self, timeout: float) -> None:
        self.fallback = True
        self.protocol_version = HANDSHAKE_VERSIONS[-1]
        await self.handshake(timeout)

    def _adopt(self, result: dict[str, Any]) -> None:
        """Take the capabilities, ``serverInfo`` and instructions from a discover result."""
        capabilities = result.get("capabilities")
        self.capabilities = capabilities if isinstance(capabilities, dict) else {}
        meta = result.get("_meta")
        info = meta.get(SERVER_INFO) if isinstance(meta, dict) else None
        if not isinstance(info, dict):
            info = result.get("serverInfo")  # some servers put it at the top level
        self.server_info = info if isinstance(info, dict) else {}
        instructions = result.get("instructions")
        self.instructions = instructions if isinstance(instructions, str) else None
        self._adopted = True
        self._listen()

    def _build_meta(self, version: str, log_level: str | None) -> None:
        self._fixed = {
            PROTOCOL_VERSION: version,
            CLIENT_CAPABILITIES: self.client_capabilities,
            CLIENT_INFO: self.client_info,
        }
        self._meta = self._fixed if log_level is None else {**self._fixed, LOG_LEVEL: log_level}

    # -- sending --------------------------------------------------------------------------

    def forward(
        self,
        method: str,
        params: dict[str, Any] | None,
        callback: ResponseCallback,
        timeout: float | None,
        owner: Any = None,
        hard_timeout: float | None = None,
    ) -> int:
        """Send a request with the era's ``_meta``; handshake-era-only requests are mapped
        (see the module docstring). Otherwise as :meth:`UpstreamSession.forward`."""
        if self.fallback:  # called on the class: cheaper than super() on this hot path
            return UpstreamSession.forward(self, method, params, callback, timeout, owner,
                                           hard_timeout)
        local = _MAPPED.get(method)
        if local is not None:
            return local(self, params, callback, timeout)
        return super().forward(method, self._stamp(params, owner), callback, timeout, owner,
                               hard_timeout)

    def _stamp(self, params: dict[str, Any] | None, owner: Any = None) -> dict[str, Any]:
        """``params`` with the era's ``_meta`` merged in (a shallow copy; the caller's
        ``progressToken`` and log level stay, its version does not).

        The client capabilities are those of the request's own client (``owner`` is the
        routed request; its ``capabilities`` are what that client declared), so that the
        backend asks only for input that client can give, and refuses with -32021 what
        needs a capability it lacks; vmcp's own for the gateway's requests."""
        capabilities = getattr(owner, "capabilities", None)
        fixed = self._fixed if capabilities is None else {
            **self._fixed, CLIENT_CAPABILITIES: capabilities}
        base = self._meta if capabilities is None else {**self._meta, **fixed}
        if params is None:
            return {"_meta": base}
        meta = params.get("_meta")
        if not meta:
            return {**params, "_meta": base}
        return {**params, "_meta": {**base, **meta, **fixed}}

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send a notification the modern era has (others, such as
        ``notifications/roots/list_changed``, have no modern form and are dropped)."""
        if self.fallback or method in _SENDABLE_NOTIFICATIONS:
            super().notify(method, params)

    def _answer(self, callback: ResponseCallback, result: dict[str, Any]) -> int:
        """Answer a mapped request here, on the next loop turn (as a backend would)."""
        self._next_id += 1
        self._loop.call_soon(callback, jsonrpc.result(self._next_id, result))
        return self._next_id

    def _ping(self, params: Any, callback: ResponseCallback, timeout: float | None) -> int:
        def answered(message: JsonMessage) -> None:
            callback(message if "error" in message else {**message, "result": {}})

        return super().forward("server/discover", self._stamp(None), answered, timeout)

    def _set_level(self, params: Any, callback: ResponseCallback, timeout: float | None) -> int:
        level = params.get("level") if isinstance(params, dict) else None
        self._build_meta(self.protocol_version, level if isinstance(level, str) else None)
        return self._answer(callback, {})

    def _subscribe(self, params: Any, callback: ResponseCallback, timeout: float | None) -> int:
        uri = params.get("uri") if isinstance(params, dict) else None
        if isinstance(uri, str) and uri not in self.subscribed:
            self.subscribed.add(uri)
            self._listen()
        return self._answer(callback, {})

    def _unsubscribe(self, params: Any, callback: ResponseCallback, timeout: float | None,
                     ) -> int:
        uri = params.get("uri") if isinstance(params, dict) else None
        if uri in self.subscribed:
            self.subscribed.discard(uri)  # type: ignore[arg-type]
            self._listen()
        return self._answer(callback, {})

    # -- the listen -----------------------------------------------------------------------

    def listen_filter(self) -> dict[str, Any]:
        """What the listen asks for: every change the backend's capabilities announce and
        the subscribed URIs (when it supports subscriptions)."""
        caps = self.capabilities
        wanted: dict[str, Any] = {}
        for key, capability in (("toolsListChanged", "tools"),
                                ("promptsListChanged", "prompts"),
                                ("resourcesListChanged", "resources")):
            value = caps.get(capability)
            if isinstance(value, dict) and value.get("listChanged"):
                wanted[key] = True
        resources = caps.get("resources")
        if self.subscribed and isinstance(resources, dict) and resources.get("subscribe"):
            wanted["resourceSubscriptions"] = sorted(self.subscribed)
        return wanted

    def _listen(self) -> None:
        """(Re-)open the listen with the current filter; none when nothing is wanted.

        The listen is not in :attr:`pending`: it is no call in flight (nobody waits for it
        and it must not keep an idle isolated connection alive or count as load).
        """
        old = self.listen_id
        if old is not None:
            self.listen_id = None
            with contextlib.suppress(ConnectionClosed):
                self._send(jsonrpc.notification("notifications/cancelled", {
                    "requestId": old, "reason": "listen replaced"}))
        wanted = self.listen_filter()
        if not wanted or self.closed_reason is not None:
            return
        self._next_id += 1
        self.listen_id = f"listen-{self._next_id}"
        self.listen_acknowledged = None
        self._listen_opened = self._loop.time()
        try:
            self._send(jsonrpc.request(self.listen_id, "subscriptions/listen", self._stamp(
                {"notifications": wanted})))
        except ConnectionClosed:
            self.listen_id = None

    def _listen_ended(self, message: JsonMessage) -> None:
        """The backend answered the listen: it ended a listen that had lasted (re-open at
        once), or refused it or ended it at once (re-open after a pause that doubles each
        time, up to :data:`MAX_LISTEN_DELAY`, so a backend that keeps refusing is not
        hammered)."""
        self.listen_id = None
        if self.closed_reason is not None:
            return
        refused = "error" in message and self.listen_acknowledged is None
        if refused or self._loop.time() - self._listen_opened < MIN_LISTEN_LIFE:
            self._listen_delay = min(max(self._listen_delay * 2, 0.5), MAX_LISTEN_DELAY)
            log.info("backend %s ended subscriptions/listen (%s); again in %gs",
                     self.mount_id, message.get("error") or "at once", self._listen_delay)
            self._loop.call_later(self._listen_delay, self._relisten)
            return
        self._listen_delay = 0.0
        self._listen()

    def _relisten(self) -> None:
        if self.listen_id is None and self.closed_reason is None:
            self._listen()

    # -- receiving ------------------------------------------------------------------------

    def _on_message(self, message: JsonMessage | Related | bytes) -> None:
        if self.fallback:  # called on the class: cheaper than super() on this hot path
            UpstreamSession._on_message(self, message)
            return
        inner = message.message if isinstance(message, Related) else message
        if type(inner) is dict:
            if "method" not in inner:
                if self.listen_id is not None and inner.get("id") == self.listen_id:
                    self._listen_ended(inner)
                    return
                if self._adopted:  # the discover answer keeps it: it is read from there
                    _drop_server_info(inner)
            elif ("id" not in inner and self.listen_id is not None
                  and self._listened(inner, self.listen_id)):
                return
        super()._on_message(message)

    def _listened(self, message: JsonMessage, listen_id: str) -> bool:
        """Handle a notification of the listen; False when it is not one."""
        params = message.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        if not isinstance(meta, dict) or meta.get(SUBSCRIPTION_ID) != listen_id:
            return False
        assert isinstance(params, dict)
        if message.get("method") == "notifications/subscriptions/acknowledged":
            honoured = params.get("notifications")
            self.listen_acknowledged = honoured if isinstance(honoured, dict) else {}
            return True
        rest = {key: value for key, value in meta.items() if key != SUBSCRIPTION_ID}
        params = {key: value for key, value in params.items() if key != "_meta"}
        if rest:
            params["_meta"] = rest
        self.events.upstream_notification(
            self, {"jsonrpc": "2.0", "method": message.get("method"), "params": params},
            NO_RELATION)
        return True


_MAPPED = {
    "ping": ModernUpstreamSession._ping,
    "logging/setLevel": ModernUpstreamSession._set_level,
    "resources/subscribe": ModernUpstreamSession._subscribe,
    "resources/unsubscribe": ModernUpstreamSession._unsubscribe,
}


def _drop_server_info(response: JsonMessage) -> None:
    """Remove the backend's ``serverInfo`` from a result's ``_meta`` (in place: the message
    was just decoded for us). It names this hop's server; to a front client the server is
    the gateway."""
    result = response.get("result")
    if type(result) is dict:
        meta = result.get("_meta")
        if type(meta) is dict and SERVER_INFO in meta:
            del meta[SERVER_INFO]
            if not meta:
                del result["_meta"]


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _supported(exc: RpcError) -> list[str] | None:
    data = exc.data
    if exc.code != UNSUPPORTED_PROTOCOL_VERSION or not isinstance(data, dict):
        return None
    supported = data.get("supported")
    return _strings(supported) if isinstance(supported, list) else None


def _mutual_modern(exc: RpcError) -> str | None:
    """The newest modern version both sides speak, named by a -32022 error, if any."""
    supported = _supported(exc) or []
    mutual = [v for v in MODERN_VERSIONS if v in supported]
    return mutual[-1] if mutual else None


def _names_handshake(exc: RpcError) -> bool:
    """True unless ``exc`` is a -32022 whose supported list has no handshake version (an
    error without a readable list is no evidence either way, so it counts as handshake)."""
    supported = _supported(exc)
    return supported is None or any(v in HANDSHAKE_VERSIONS for v in supported)
