"""The entry of a 2026-07-28 request that arrives with no connection to hold state: a
Streamable HTTP POST, whose response stream is all it has.

Where a connection's requests go through its :class:`~vmcp.gateway.session.FrontSession`,
a stateless POST needs none of a session's tables (negotiated state, server->client
requests, subscriptions, tasks): :class:`StatelessEntry` hands its request to the modern
adapter, carries what belongs to it to the response stream, and cancels what is left when
that stream closes, which in this era is how a client withdraws a request.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from vmcp.auth.base import Principal
from vmcp.protocol import jsonrpc
from vmcp.routing.middleware import Caller
from vmcp.transports.base import FrontPeer, JsonMessage

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway

log = logging.getLogger("vmcp.gateway")


class StatelessEntry:
    """One stateless request's way into the gateway (what a front gets from
    :meth:`~vmcp.gateway.gateway.Gateway.open_stateless`): it takes the request, and the
    gateway's look-ups made for it (``tools/list`` to check its headers), on one peer."""

    __slots__ = ("caller", "closed", "exchanges", "gateway", "peer")

    def __init__(self, gateway: Gateway, peer: FrontPeer, principal: Principal | None) -> None:
        self.gateway = gateway
        self.peer = peer
        #: whom the request is from (the modern adapter keys each request by it)
        self.caller = Caller("stateless", principal)
        #: request id -> the exchange serving it, for cancellation
        self.exchanges: dict[Any, Any] = {}
        self.closed = False

    def handle(self, message: JsonMessage) -> None:
        """Take one request of the client's (a response is dropped: a stateless request is
        sent no request it could answer)."""
        if "method" not in message:
            log.debug("dropped a response to a stateless request's peer")
            return
        method, request_id = message["method"], message["id"]
        if type(method) is not str or type(request_id) not in jsonrpc.ID_TYPES:
            answerable = jsonrpc.answerable_id(request_id)
            self.send(jsonrpc.error(answerable, jsonrpc.bad_method_or_id()), answerable)
            return
        params = message.get("params")
        self.gateway.modern.serve(self, request_id, method,
                                  params if isinstance(params, dict) else {})

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Send what belongs to the request to its response stream (dropped once closed)."""
        if not self.closed:
            self.peer.send(message, related_to)

    async def aclose(self) -> None:
        """The response stream closed: whatever still runs for the request is cancelled."""
        if self.closed:
            return
        self.closed = True
        self.gateway.stateless.discard(self)
        for exchange in list(self.exchanges.values()):
            exchange.cancel("client disconnected")
