"""The unit every layer below the era adapters works on: one request and where its traffic goes.

An era adapter (the handshake-era session, the 2026-07-28 stateless handler) builds a
:class:`Request` for each request it routes. What belongs to the request (its result or
error, progress, log lines, a backend's request for input) goes to the request's
:class:`Sink`, which delivers it in the adapter's era and on the adapter's wire. The router,
the upstream connection and the gateway's relay never ask which era or front a request came
from: a backend message reaches a request by the relation the protocol gives (the request
itself is the owner of the backend call), and the sink decides how to say it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import INTERNAL_ERROR, METHOD_NOT_FOUND, RpcError
from vmcp.routing.middleware import Caller

if TYPE_CHECKING:
    from vmcp.registry.mount import Replica
    from vmcp.transports.base import JsonMessage
    from vmcp.upstream.session import UpstreamSession

log = logging.getLogger("vmcp.gateway")

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
LEVEL_RANK = {name: rank for rank, name in enumerate(LOG_LEVELS)}

HANDSHAKE = "handshake"
MODERN = "modern"


class Sink(Protocol):
    """Where the traffic of the requests of one adapter goes (a session, or one stateless
    exchange), and what the router keeps per sink to cancel them."""

    #: True once nothing can be delivered any more (the client went away)
    closed: bool
    #: front request id -> (upstream, backend id, gateway progress token) of forwarded calls
    inflight: dict[Any, tuple[UpstreamSession, int, int | None]]
    #: front request id -> the task serving it, for requests that needed one
    tasks: dict[Any, asyncio.Task[None]]
    #: mount id -> the replica a sticky mount keeps serving this sink from
    affinity: dict[str, Replica]

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Deliver a message (a response, or a notification of request ``related_to``)."""

    def deliver(self, request: Request, message: JsonMessage) -> None:
        """Deliver the backend's response to ``request`` (its id already put back)."""

    def fail(self, request_id: Any, err: RpcError) -> None:
        """Answer a request with an error."""

    def relay_request(
        self, request: Request | None, upstream: UpstreamSession, message: JsonMessage
    ) -> None:
        """A backend asked for input (sampling, elicitation, roots) while serving ``request``
        (None: while serving this sink, no request known)."""


class Request:
    """One front request on its way through the gateway.

    ``capabilities`` and ``log_rank`` are what the client declared for this request: a
    handshake-era session's negotiated values, or a stateless request's own ``_meta``.
    """

    __slots__ = (
        "approval",
        "caller",
        "capabilities",
        "era",
        "id",
        "log_rank",
        "mapper",
        "method",
        "mount_id",
        "params",
        "sink",
    )

    def __init__(
        self, request_id: Any, caller: Caller, sink: Sink, era: str,
        capabilities: dict[str, Any], log_rank: int | None,
    ) -> None:
        self.id = request_id
        self.caller = caller
        self.sink = sink
        self.era = era
        self.capabilities = capabilities
        #: the minimum level of log notifications wanted; None: all (handshake era, no
        #: ``setLevel``), or -- for a stateless request -- see :meth:`wants_log`
        self.log_rank = log_rank
        # mount_id, method, params, mapper: where the router sent the request, as the
        # backend got it (set by Router.route and Router.forward, never read before), so
        # that a request answered ``input_required`` can be sent again with the input.
        # approval: the caller's decision, set by the approvals before it is routed (read
        # with a default: most requests never need one)

    def wants_log(self, level: Any) -> bool:
        """True when a log notification at ``level`` may reach this request's client.

        A stateless request that named no log level gets none (the 2026-07-28 rule); a
        handshake-era one gets every level until the session sets one.
        """
        rank = self.log_rank
        if rank is None:
            return self.era == HANDSHAKE
        return LEVEL_RANK.get(level, 0) >= rank

    def spawn(self, work: Coroutine[Any, Any, dict[str, Any]]) -> None:
        """Serve this request in a task of its own: ``work``'s result is its response."""
        sink = self.sink
        request_id = self.id

        async def run() -> None:
            try:
                result = await work
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.sink.fail(self.id, _as_rpc_error(exc, request_id))
            else:
                self.sink.deliver(self, {"jsonrpc": "2.0", "id": self.id, "result": result})
            finally:
                sink.tasks.pop(request_id, None)

        sink.tasks[request_id] = asyncio.get_running_loop().create_task(run())

    def __repr__(self) -> str:
        return f"<Request {self.id!r} of {self.caller.session_id}>"


def missing_capability(capabilities: dict[str, Any], method: Any,
                       params: dict[str, Any]) -> str | None:
    """What a backend's request needs that the client did not declare, or None."""
    if method == "sampling/createMessage":
        sampling = capabilities.get("sampling")
        if not isinstance(sampling, dict):
            return "sampling"
        if params.get("tools") and "tools" not in sampling:
            return "sampling with tools"
    elif method == "elicitation/create":
        elicitation = capabilities.get("elicitation")
        if not isinstance(elicitation, dict):
            return "elicitation"
        mode = params.get("mode", "form")
        if mode == "url" and "url" not in elicitation:
            return "URL elicitation"
        if mode == "form" and elicitation and "form" not in elicitation:
            return "form elicitation"
    elif method == "roots/list" and not isinstance(capabilities.get("roots"), dict):
        return "roots"
    return None


def refused_for_capability(capabilities: dict[str, Any], upstream: UpstreamSession,
                           message: JsonMessage) -> bool:
    """Answer a backend's request -32601 when the client's ``capabilities`` lack what it
    needs (see :func:`missing_capability`); True when it was refused."""
    params = message.get("params")
    missing = missing_capability(capabilities, message.get("method"),
                                 params if isinstance(params, dict) else {})
    if missing:
        upstream.respond(jsonrpc.error(message.get("id"), RpcError(
            METHOD_NOT_FOUND, f"The connected client does not support {missing}")))
    return bool(missing)


def _as_rpc_error(exc: Exception, request_id: Any) -> RpcError:
    if isinstance(exc, RpcError):
        return exc
    log.exception("request %r failed", request_id)
    return RpcError(INTERNAL_ERROR, f"Internal error: {exc}")
