"""``subscriptions/listen``: the 2026-07-28 stream of change notifications.

A listen names what its client wants to hear of (list changes of tools, prompts and
resources; updates of some resources). The gateway acknowledges the subset it will honour,
then sends every matching notification on the listen's stream, tagged with the listen's id,
until the client cancels it or goes away. List changes come from the gateway's own namespace
(which hears every backend's, of either era); resource updates come through the gateway's
subscriptions to the backends, the same ones handshake-era clients share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from vmcp.protocol import jsonrpc
from vmcp.protocol.eras import SUBSCRIPTION_ID
from vmcp.protocol.errors import INVALID_PARAMS, RpcError
from vmcp.transports.base import JsonMessage

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway
    from vmcp.gateway.modern import ExchangePeer
    from vmcp.registry.mount import Replica
    from vmcp.routing.request import Request
    from vmcp.upstream.session import UpstreamSession

log = logging.getLogger("vmcp.gateway")

#: listen filter key -> the namespace kinds whose change it is told of
_FILTERS = {
    "toolsListChanged": ("tools",),
    "promptsListChanged": ("prompts",),
    "resourcesListChanged": ("resources", "resource_templates"),
}
#: list-changed notification -> the filter key that asks for it
_WANTED_BY = {
    "notifications/tools/list_changed": "toolsListChanged",
    "notifications/prompts/list_changed": "promptsListChanged",
    "notifications/resources/list_changed": "resourcesListChanged",
}


class Listen:
    """One open ``subscriptions/listen`` (the sink of its request, and a subscriber of the
    resources it names)."""

    def __init__(self, listens: Listens, request: Request, session: ExchangePeer,
                 wanted: dict[str, Any]) -> None:
        self.listens = listens
        self.request = request
        self.session = session
        self.caller = request.caller
        #: the filter keys honoured
        self.wanted = wanted
        #: (mount, backend URI) routes this listen subscribed to
        self.subscriptions: set[tuple[str, str]] = set()
        self.closed = False
        self.inflight: dict[Any, tuple[UpstreamSession, int, int | None]] = {}
        self.tasks: dict[Any, asyncio.Task[None]] = {}
        self.affinity: dict[str, Replica] = {}

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Send a change notification on the stream, tagged with the listen's id."""
        if self.closed:
            return
        params = message.get("params")
        params = dict(params) if isinstance(params, dict) else {}
        meta = params.get("_meta")
        params["_meta"] = {**(meta if isinstance(meta, dict) else {}),
                           SUBSCRIPTION_ID: self.request.id}
        self.session.send(jsonrpc.notification(message["method"], params),  # type: ignore[arg-type]
                          self.request.id)

    def deliver(self, request: Request, message: JsonMessage) -> None:
        """A listen ends only with a response the gateway sends; nothing else answers it."""

    def fail(self, request_id: Any, err: RpcError) -> None:
        """End the listen with an error."""
        if not self.closed:
            self.session.send(jsonrpc.error(request_id, err), request_id)
            self.cancel("failed")

    def relay_request(self, request: Request | None, upstream: UpstreamSession,
                      message: JsonMessage) -> None:
        """No backend call runs under a listen."""
        upstream.respond(jsonrpc.error(message.get("id"), RpcError(
            INVALID_PARAMS, "no call of a client is waiting for this request")))

    def cancel(self, reason: str) -> None:
        """The client ended the listen (or went away): stop sending, drop subscriptions."""
        if self.closed:
            return
        self.closed = True
        self.session.exchanges.pop(self.request.id, None)
        self.listens.active.discard(self)
        gateway = self.listens.gateway
        for route in list(self.subscriptions):
            gateway.spawn(_quietly(gateway.unsubscribe(self, route)))  # type: ignore[arg-type]


class Listens:
    """The open listens of one gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.active: set[Listen] = set()

    def open(self, request: Request, session: ExchangePeer, params: dict[str, Any]) -> None:
        """Open a listen: acknowledge what will be honoured, then keep the stream."""
        wanted = params.get("notifications")
        if not isinstance(wanted, dict):
            raise RpcError(INVALID_PARAMS, "subscriptions/listen needs a notifications object")
        gateway = self.gateway
        caps = gateway.front_capabilities()
        honoured: dict[str, Any] = {}
        for key, kinds in _FILTERS.items():
            if wanted.get(key) is True and kinds[0] in caps:
                honoured[key] = True
        uris = wanted.get("resourceSubscriptions")
        routes: list[tuple[str, str]] = []
        resources = caps.get("resources")
        if isinstance(uris, list) and isinstance(resources, dict) and resources.get("subscribe"):
            taken = []
            for uri in uris:
                try:
                    routes.append(gateway.dispatch.resource_route(request.caller, uri))
                except RpcError:
                    continue
                taken.append(uri)
            honoured["resourceSubscriptions"] = taken
        listen = Listen(self, request, session, honoured)
        request.sink = listen
        session.exchanges[request.id] = listen
        self.active.add(listen)
        listen.send(jsonrpc.notification("notifications/subscriptions/acknowledged",
                                         {"notifications": honoured}))
        for route in routes:
            gateway.spawn(self._subscribe(listen, route))

    async def _subscribe(self, listen: Listen, route: tuple[str, str]) -> None:
        try:
            await self.gateway.subscribe(listen, route)  # type: ignore[arg-type]
        except RpcError as exc:
            log.warning("listen %r: subscribing to %s failed: %s", listen.request.id, route,
                        exc.message)

    def list_changed(self, method: str, mount_id: str | None) -> None:
        """Tell every listen that asked for it that a list changed."""
        key = _WANTED_BY.get(method)
        if key is None:
            return
        gateway = self.gateway
        message = jsonrpc.notification(method)
        for listen in list(self.active):
            if listen.wanted.get(key) and (
                    mount_id is None or gateway.may_notice(listen, mount_id)):  # type: ignore[arg-type]
                listen.send(message)


async def _quietly(work: Any) -> None:
    with contextlib.suppress(RpcError):
        await work
