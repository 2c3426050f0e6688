"""One MCP client session to one backend replica.

It owns the handshake, mints the backend-side JSON-RPC ids, keeps the table of requests in
flight, enforces timeouts (sending ``notifications/cancelled`` on expiry) and fails every
pending request at once when the backend goes away. Everything the backend sends that is
not a response is handed to an :class:`UpstreamEvents` listener (the gateway).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
from collections.abc import Callable
from typing import Any, Protocol

from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import BACKEND_UNAVAILABLE, INTERNAL_ERROR, REQUEST_TIMEOUT, RpcError
from vmcp.protocol.versions import HANDSHAKE_VERSIONS, LATEST_HANDSHAKE_VERSION
from vmcp.transports.base import Connection, ConnectionClosed, JsonMessage, Related

log = logging.getLogger("vmcp.upstream")

#: what vmcp declares to every backend: it relays each of these to a capable front client
CLIENT_CAPABILITIES: dict[str, Any] = {
    "sampling": {"context": {}, "tools": {}},
    "elicitation": {"form": {}, "url": {}},
    "roots": {"listChanged": True},
}

ResponseCallback = Callable[[JsonMessage], None]


class _NoRelation:
    """The wire did not say which request a backend-initiated message belongs to."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_RELATION"


#: the ``origin`` of a backend message that came with no relation to any request (stdio,
#: WebSocket, a Streamable HTTP GET stream): the gateway must not guess one
NO_RELATION: Any = _NoRelation()


class UpstreamEvents(Protocol):
    """Receives what a backend sends on its own initiative.

    ``origin`` is what the wire says the message belongs to: the ``owner`` given to
    :meth:`UpstreamSession.forward` for the request whose response stream carried it (None
    when that request was the gateway's own or is no longer in flight), or
    :data:`NO_RELATION` when the wire gives no relation.
    """

    def upstream_notification(
        self, upstream: UpstreamSession, message: JsonMessage, origin: Any
    ) -> None:
        """A notification from the backend."""

    def upstream_request(
        self, upstream: UpstreamSession, message: JsonMessage, origin: Any
    ) -> None:
        """A server-to-client request (sampling, elicitation, roots, ping)."""

    def upstream_closed(self, upstream: UpstreamSession, reason: str) -> None:
        """The backend went away; its pending requests have already been failed."""


class Pending:
    """A request in flight to the backend."""

    __slots__ = ("callback", "deadline", "expires", "owner", "timeout")

    def __init__(self, callback: ResponseCallback, owner: Any) -> None:
        self.callback = callback
        #: who the request is for (a front session), used to relate backend-initiated traffic
        self.owner = owner
        #: loop time at which it times out (None: never)
        self.expires: float | None = None
        self.timeout: float | None = None
        #: the loop time past which progress no longer extends the timeout (None: never)
        self.deadline: float | None = None


class UpstreamSession:
    """The client side of one MCP connection to one backend replica."""

    def __init__(
        self,
        mount_id: str,
        replica_id: str,
        connection: Connection,
        events: UpstreamEvents,
        client_name: str = "vmcp",
        client_version: str = "0",
        capabilities: dict[str, Any] = CLIENT_CAPABILITIES,
    ) -> None:
        """:param capabilities: the client capabilities declared to the backend (what the
        gateway can serve for it: without a front client, none)."""
        self.mount_id = mount_id
        self.replica_id = replica_id
        self.connection = connection
        self.events = events
        self.client_info = {"name": client_name, "version": client_version}
        self.client_capabilities = capabilities
        self.pending: dict[int, Pending] = {}
        self.server_info: dict[str, Any] = {}
        self.capabilities: dict[str, Any] = {}
        self.instructions: str | None = None
        self.protocol_version = LATEST_HANDSHAKE_VERSION
        self.closed_reason: str | None = None
        #: who this connection serves alone (an isolated mount's session id or persona), or
        #: None for a connection shared by every caller of the mount
        self.scope: tuple[str, str] | None = None
        self._next_id = 0
        self._reader: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[JsonMessage] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._deadlines: list[tuple[float, int]] = []
        self._sweep: asyncio.TimerHandle | None = None
        self._sweep_at = math.inf

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """True until the backend goes away or the session is closed."""
        return self.closed_reason is None

    @property
    def modern(self) -> bool:
        """True when the backend is spoken to in the 2026-07-28 era (never, here)."""
        return False

    async def start(self, timeout: float) -> None:
        """Start reading and perform the ``initialize`` handshake."""
        self.begin_reading()
        await self.handshake(timeout)

    def begin_reading(self) -> None:
        """Start handing what the backend sends to :meth:`_on_message`."""
        if not self.connection.start_push(self._on_message, self._closed):
            self._reader = self._loop.create_task(self._read_loop(),
                                                  name=f"upstream:{self.mount_id}")

    async def handshake(self, timeout: float) -> None:
        """Perform the ``initialize`` handshake."""
        params = {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": self.client_capabilities,
            "clientInfo": self.client_info,
        }
        result = await self.request("initialize", params, timeout)
        version = result.get("protocolVersion")
        if version not in HANDSHAKE_VERSIONS:
            raise RpcError(BACKEND_UNAVAILABLE, f"backend speaks unsupported version {version!r}")
        self.protocol_version = version
        self.capabilities = result.get("capabilities") or {}
        self.server_info = result.get("serverInfo") or {}
        self.instructions = result.get("instructions")
        self.notify("notifications/initialized")

    async def aclose(self) -> None:
        """Fail what is in flight and close the connection politely."""
        self._fail_all("backend connection closed by the gateway")
        if self.closed_reason is None:
            self.closed_reason = "closed"
        for task in (self._writer, self._reader):
            if task is not None and not task.done():
                task.cancel()
        await self.connection.aclose()

    # -- sending --------------------------------------------------------------------------

    def _send(self, message: JsonMessage) -> None:
        if self.closed_reason is not None:
            raise ConnectionClosed(self.closed_reason)
        if self._queue is None:
            if self.connection.send_nowait(message):
                return
            self._queue = asyncio.Queue()
            self._writer = self._loop.create_task(self._write_loop())
        self._queue.put_nowait(message)

    async def _write_loop(self) -> None:
        assert self._queue is not None
        while True:
            message = await self._queue.get()
            try:
                await self.connection.send(message)
            except ConnectionClosed as exc:
                self._closed(str(exc))
                return

    def forward(
        self,
        method: str,
        params: dict[str, Any] | None,
        callback: ResponseCallback,
        timeout: float | None,
        owner: Any = None,
        hard_timeout: float | None = None,
    ) -> int:
        """Send a request; ``callback`` gets the response message (result or error).

        Returns the backend-side id. The callback is called exactly once: with the backend's
        response, a timeout error (after ``notifications/cancelled`` went to the backend), or
        an error when the backend goes away.
        """
        self._next_id += 1
        request_id = self._next_id
        pending = Pending(callback, owner)
        self.pending[request_id] = pending
        # jsonrpc.request(), inline: the hot path
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            self._send(message)
        except ConnectionClosed as exc:
            del self.pending[request_id]
            callback(_error_message(request_id, self._unavailable(str(exc))))
            return request_id
        if timeout is not None:
            now = self._loop.time()
            pending.timeout = timeout
            if hard_timeout is not None:
                pending.deadline = now + hard_timeout
            self._expire_at(request_id, pending, now + timeout)
        return request_id

    def extend(self, request_id: int) -> None:
        """Restart a request's timeout (progress arrived), never past its hard deadline."""
        pending = self.pending.get(request_id)
        if pending is None or pending.deadline is None or pending.timeout is None:
            return
        self._expire_at(request_id, pending,
                        min(self._loop.time() + pending.timeout, pending.deadline))

    # -- timeouts: one timer per connection, over a heap of deadlines -----------------------
    # A timer per request would cost a heap entry and a handle in the event loop for every
    # call; here a request only pushes (deadline, id), and answered ones are dropped lazily.

    def _expire_at(self, request_id: int, pending: Pending, when: float) -> None:
        pending.expires = when
        heapq.heappush(self._deadlines, (when, request_id))
        if when < self._sweep_at:
            self._arm(when)
        if len(self._deadlines) > 2 * len(self.pending) + 256:
            self._deadlines = [(e.expires, rid) for rid, e in self.pending.items()
                               if e.expires is not None]
            heapq.heapify(self._deadlines)

    def _arm(self, when: float) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        self._sweep = self._loop.call_at(when, self._sweep_expired)
        self._sweep_at = when

    def _sweep_expired(self) -> None:
        self._sweep = None
        self._sweep_at = math.inf
        heap, pending = self._deadlines, self.pending
        now = self._loop.time() + 0.001  # timers may fire a clock tick early
        while heap and heap[0][0] <= now:
            when, request_id = heapq.heappop(heap)
            entry = pending.get(request_id)
            if entry is not None and entry.expires == when:
                self._expire(request_id, entry)
        while heap and (heap[0][1] not in pending or pending[heap[0][1]].expires != heap[0][0]):
            heapq.heappop(heap)
        if heap:
            self._arm(heap[0][0])

    async def request(
        self, method: str, params: dict[str, Any] | None, timeout: float | None,
        owner: Any = None,
    ) -> dict[str, Any]:
        """Send a request and return its result; raise :class:`RpcError` on an error."""
        future: asyncio.Future[JsonMessage] = self._loop.create_future()

        def done(message: JsonMessage) -> None:
            if not future.done():
                future.set_result(message)

        request_id = self.forward(method, params, done, timeout, owner)
        try:
            message = await future
        except asyncio.CancelledError:
            self.cancel(request_id, "cancelled by the gateway")
            raise
        if "error" in message:
            raise RpcError.from_error(message["error"])
        result = message.get("result")
        return result if isinstance(result, dict) else {}

    def cancel(self, request_id: int, reason: str) -> bool:
        """Drop a request in flight and tell the backend; False if it was not in flight."""
        pending = self.pending.pop(request_id, None)
        if pending is None:
            return False
        with contextlib.suppress(ConnectionClosed):
            self.notify("notifications/cancelled", {"requestId": request_id, "reason": reason})
        return True

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send a notification (dropped silently when the backend is gone)."""
        with contextlib.suppress(ConnectionClosed):
            self._send(jsonrpc.notification(method, params))

    def respond(self, message: JsonMessage) -> None:
        """Send a response to a request the backend made."""
        with contextlib.suppress(ConnectionClosed):
            self._send(message)

    # -- receiving ------------------------------------------------------------------------

    def _on_message(self, message: JsonMessage | Related | bytes) -> None:
        origin = NO_RELATION
        if not isinstance(message, dict):
            if not isinstance(message, Related):
                self._malformed(message)
                return
            carrier = self.pending.get(message.request_id)
            origin = carrier.owner if carrier is not None else None
            message = message.message
        if "method" not in message:
            entry = self.pending.pop(message.get("id"), None)  # type: ignore[arg-type]
            if entry is not None:
                entry.callback(message)
        elif "id" in message:
            self.events.upstream_request(self, message, origin)
        else:
            self.events.upstream_notification(self, message, origin)

    def callers_in_flight(self) -> set[Any]:
        """The distinct front sinks (the ``sink`` of each ``owner``: a session, or one
        stateless exchange) with a request in flight on this connection; the gateway's own
        requests are not counted."""
        callers = set()
        for pending in self.pending.values():
            owner = pending.owner
            if owner is not None:
                callers.add(owner.sink)
        return callers

    def _malformed(self, message: Any) -> None:
        """A message that is not a JSON-RPC object: the request it answers, when its id is
        readable, fails with a clear error instead of waiting for its timeout."""
        request_id = jsonrpc.readable_id(message) if isinstance(message, bytes | str) else None
        entry = self.pending.pop(request_id, None) if request_id is not None else None
        log.warning("backend %s sent a malformed message; %s", self.mount_id,
                    "failing the request it answers" if entry is not None else "ignored")
        if entry is not None:
            err = RpcError(INTERNAL_ERROR, f"Backend {self.mount_id!r} sent an answer that is "
                           "not valid JSON-RPC (bad UTF-8, a lone surrogate, or too deep)")
            entry.callback(_error_message(request_id, err))

    async def _read_loop(self) -> None:
        receive = self.connection.receive
        on_message = self._on_message
        try:
            while True:
                on_message(await receive())
        except ConnectionClosed as exc:
            self._closed(str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("reading from backend %s failed", self.mount_id)
            self._closed(f"read failed: {exc}")

    def _closed(self, reason: str) -> None:
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        self._fail_all(reason)
        self.events.upstream_closed(self, reason)

    def _fail_all(self, reason: str) -> None:
        pending, self.pending = self.pending, {}
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        self._deadlines = []
        for request_id, entry in pending.items():
            entry.callback(_error_message(request_id, self._unavailable(reason)))

    def _unavailable(self, reason: str) -> RpcError:
        return RpcError(BACKEND_UNAVAILABLE, f"Backend {self.mount_id!r} is unavailable: {reason}")

    def _expire(self, request_id: int, entry: Pending) -> None:
        timeout = entry.timeout or 0.0
        self.cancel(request_id, f"timed out after {timeout:g}s")
        err = RpcError(
            REQUEST_TIMEOUT,
            f"Request to backend {self.mount_id!r} timed out after {timeout:g}s",
        )
        entry.callback(_error_message(request_id, err))


def _error_message(request_id: int, err: RpcError) -> JsonMessage:
    return jsonrpc.error(request_id, err)
