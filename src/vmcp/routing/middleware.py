"""Request middleware and visibility filters contributed by plugins, composed once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from vmcp.auth.base import Principal


@dataclass(slots=True)
class Caller:
    """Who a request comes from: a front session and its principal."""

    session_id: str
    principal: Principal | None = None

    @property
    def persona(self) -> str | None:
        """The persona this caller acts as (None: full access), fixed for the session.

        The key that decides what the caller may see: caches key shared entries on it.
        """
        principal = self.principal
        return principal.persona if principal is not None else None


@dataclass(slots=True)
class CallNotes:
    """How the router served one routed request, filled in as it goes (a middleware reads
    them once ``call_next`` has returned or raised)."""

    #: the replica that answered last (None: none was called, e.g. a cache hit)
    replica: str | None = None
    #: how many calls were made to replicas (more than one: retried, failing over)
    attempts: int = 0
    #: ``hit`` or ``miss`` for a cacheable request; None when the cache was not asked
    cache: str | None = None


@dataclass(slots=True)
class RoutedRequest:
    """A request on its way to one mount (names and URIs already mapped to the backend's)."""

    caller: Caller
    mount_id: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    #: the front request's JSON-RPC id (None for the gateway's own requests)
    request_id: Any = None
    #: the caller's decision on a call that needed approval: ``approved``, ``declined``
    #: or ``unasked`` (its client cannot be asked); None when none was needed. A call not
    #: approved reaches the middleware chain too, but never the backend.
    approval: str | None = None
    #: filled in by the router (shared by the copies ``dataclasses.replace`` makes)
    notes: CallNotes = field(default_factory=CallNotes)


CallNext = Callable[[RoutedRequest], Awaitable[dict[str, Any]]]
Middleware = Callable[[RoutedRequest, CallNext], Awaitable[dict[str, Any]]]
VisibilityFilter = Callable[[Caller, str, str, str], bool]


MiddlewareChain = Callable[[RoutedRequest, CallNext], Awaitable[dict[str, Any]]]


def chain(middlewares: Sequence[Middleware]) -> MiddlewareChain | None:
    """Compose middlewares once (the first is outermost); None when there are none.

    The returned callable takes the request and the innermost ``call_next``, which reaches
    the backend chosen for that request.
    """
    if not middlewares:
        return None
    layers = tuple(middlewares)

    async def run(request: RoutedRequest, innermost: CallNext) -> dict[str, Any]:
        async def call(index: int, routed: RoutedRequest) -> dict[str, Any]:
            if index == len(layers):
                return await innermost(routed)
            return await layers[index](routed, partial(call, index + 1))

        return await call(0, request)

    return run


def all_visible(filters: Sequence[VisibilityFilter]) -> VisibilityFilter | None:
    """One filter requiring every filter to agree, or None when there are none."""
    if not filters:
        return None
    if len(filters) == 1:
        return filters[0]

    def visible(caller: Caller, mount_id: str, kind: str, name: str) -> bool:
        return all(f(caller, mount_id, kind, name) for f in filters)

    return visible
