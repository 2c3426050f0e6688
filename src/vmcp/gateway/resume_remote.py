"""Resuming a waiting call on the instance that holds it (``[cluster]`` only).

A 2026-07-28 call bridged to a handshake-era backend that asked for input waits on the
instance that answered ``input_required``: the backend's request is open on that instance's
connection. The sealed ``requestState`` names that instance. A retry that a load balancer
gives to another instance is forwarded to the owner through the shared state's messages;
the owner resumes the call with a stand-in for the retry's sink, and publishes back every
message of it (progress, log lines, another ``input_required``, the result), which the
retry's instance sends on the retry's own response. Nothing is forwarded between instances
but these messages: no proxying of HTTP, no mesh.

A retry is refused at once when no instance listens under the owner's name (it is gone: the
client starts the call again), and fails when the owner goes while the retry waits for it. A
retry withdrawn (its client went away) cancels the call on the owner.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vmcp.cluster.base import SharedState
from vmcp.gateway.modern import Exchange
from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import BACKEND_UNAVAILABLE, INTERNAL_ERROR, INVALID_PARAMS, RpcError
from vmcp.routing.request import MODERN, Request
from vmcp.transports.base import JsonMessage

if TYPE_CHECKING:
    from vmcp.gateway.bridge import Bridge

log = logging.getLogger("vmcp.gateway")

#: message kinds: a retry for the owner, a message of a resumed call for the retry, and
#: the retry withdrawn
RESUME = "resume"
RESUMED = "resumed"
CANCEL = "cancel-resumed"
#: seconds between two checks that the owners of forwarded retries still listen
WATCH_EVERY = 1.0


def gone(instance: str) -> RpcError:
    """The refusal of a retry whose waiting call was on an instance that is gone."""
    return RpcError(INVALID_PARAMS, f"Invalid requestState: the call it belongs to was "
                    f"waiting on gateway instance {instance!r}, which is gone; start the "
                    "call again")


@dataclass(slots=True)
class _Forwarded:
    """A retry sent to its call's owner, waiting for what the call sends."""

    retry: Request
    owner: str
    timer: asyncio.TimerHandle
    #: set once the retry is answered; the task awaiting it is what a cancellation of the
    #: retry cancels (the router cancels a sink's tasks), which tells the owner
    ended: asyncio.Future[None]


class _Peer:
    """The stand-in for a retry's connection on the owner: what the resumed call sends
    goes back to the retry's instance, in order."""

    __slots__ = ("exchanges", "ref", "remote", "to")

    def __init__(self, remote: RemoteResumes, to: str, ref: str) -> None:
        self.remote = remote
        self.to = to
        self.ref = ref
        self.exchanges: dict[Any, Exchange] = {}

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Publish a message of the resumed call to the retry's instance."""
        if jsonrpc.classify(message) == jsonrpc.RESPONSE:
            self.remote.taken.pop(self.ref, None)
        self.remote.post(self.to, {"kind": RESUMED, "ref": self.ref, "message": message})


class RemoteResumes:
    """Both sides of a forwarded retry: the retry's instance and the call's owner."""

    def __init__(self, bridge: Bridge, state: SharedState, timeout: float) -> None:
        self.bridge = bridge
        self.state = state
        #: seconds a forwarded retry waits for its call's next message at most
        self.timeout = timeout
        #: ref -> a retry this instance forwarded
        self.forwarded: dict[str, _Forwarded] = {}
        #: ref -> the stand-in exchange of a retry another instance forwarded here
        self.taken: dict[str, Exchange] = {}
        self._outbox: list[tuple[str, dict[str, Any]]] = []
        self._flushing = False
        self._watching = False
        state.listen(self.on_message)

    # -- the retry's instance -------------------------------------------------------------

    def forward(self, retry: Request, owner: str, handle: Any, params: dict[str, Any]) -> None:
        """Send ``retry`` to the instance whose call it resumes; its messages come back."""
        ref = secrets.token_urlsafe(12)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.timeout, self._fail, ref, RpcError(
            BACKEND_UNAVAILABLE, f"gateway instance {owner!r} did not answer the retry"))
        entry = self.forwarded[ref] = _Forwarded(retry, owner, timer, loop.create_future())
        retry.sink.tasks[retry.id] = loop.create_task(self._until_answered(ref, entry))
        message = {"kind": RESUME, "ref": ref, "from": self.state.instance, "h": handle,
                   "id": retry.id, "capabilities": retry.capabilities,
                   "log_rank": retry.log_rank,
                   "params": {"inputResponses": params.get("inputResponses")}}
        self.bridge.gateway.spawn(self._send(ref, owner, message))
        if not self._watching:
            self._watching = True
            self.bridge.gateway.spawn(self._watch())

    async def _until_answered(self, ref: str, entry: _Forwarded) -> None:
        """Wait for the retry's answer; cancelled (the client withdrew the retry or went
        away), tell the owner to cancel the call."""
        try:
            await entry.ended
        except asyncio.CancelledError:
            if self.forwarded.pop(ref, None) is not None:
                entry.timer.cancel()
                self.post(entry.owner, {"kind": CANCEL, "ref": ref})
            raise

    async def _send(self, ref: str, owner: str, message: dict[str, Any]) -> None:
        try:
            heard = await self.state.publish(owner, message)
        except Exception as exc:
            self._fail(ref, RpcError(BACKEND_UNAVAILABLE, "the retry could not reach gateway "
                                     f"instance {owner!r}: shared state unavailable ({exc})"))
            return
        if not heard:
            self._fail(ref, gone(owner))
        else:
            log.debug("retry %r sent to instance %s, whose call it resumes",
                      self.forwarded[ref].retry.id if ref in self.forwarded else None, owner)

    async def _watch(self) -> None:
        """While retries wait for their owners, check each owner still listens (an
        instance killed drops its Redis connection, and with it its subscription)."""
        try:
            while self.forwarded:
                await asyncio.sleep(WATCH_EVERY)
                for owner in {entry.owner for entry in self.forwarded.values()}:
                    try:
                        heard = await self.state.publish(owner, {"kind": "watch"})
                    except Exception:
                        continue  # the timeout still ends the retry
                    if not heard:
                        for ref in [ref for ref, entry in self.forwarded.items()
                                    if entry.owner == owner]:
                            self._fail(ref, RpcError(
                                BACKEND_UNAVAILABLE, f"gateway instance {owner!r}, where the "
                                "call was waiting for input, went away; start the call again"))
        finally:
            self._watching = False

    def _fail(self, ref: str, err: RpcError) -> None:
        entry = self.forwarded.pop(ref, None)
        if entry is None:
            return
        self._ended(entry)
        log.info("forwarded retry %r failed: %s", entry.retry.id, err.message)
        entry.retry.sink.fail(entry.retry.id, err)

    def _resumed(self, message: dict[str, Any]) -> None:
        """A message of a call resumed elsewhere: out on the retry's response."""
        ref = message.get("ref")
        entry = self.forwarded.get(ref) if isinstance(ref, str) else None
        sent = message.get("message")
        if entry is None or not isinstance(sent, dict):
            return
        exchange = entry.retry.sink
        if not isinstance(exchange, Exchange) or exchange.closed:
            self._fail(str(ref), RpcError(INTERNAL_ERROR, "the retry's client went away"))
            return
        exchange.session.send(sent, entry.retry.id)
        if jsonrpc.classify(sent) == jsonrpc.RESPONSE:
            del self.forwarded[str(ref)]
            self._ended(entry)
            exchange.hand_over()  # answered; the call itself lives on its owner
        else:
            entry.timer.cancel()
            entry.timer = asyncio.get_running_loop().call_later(
                self.timeout, self._fail, ref, RpcError(
                    BACKEND_UNAVAILABLE, f"gateway instance {entry.owner!r} stopped answering"))

    @staticmethod
    def _ended(entry: _Forwarded) -> None:
        entry.timer.cancel()
        if not entry.ended.done():
            entry.ended.set_result(None)
        sink = entry.retry.sink
        if sink.tasks.get(entry.retry.id) is not None:
            del sink.tasks[entry.retry.id]

    # -- the call's owner -----------------------------------------------------------------

    def _resume(self, message: dict[str, Any]) -> None:
        """A retry another instance forwarded: resume the waiting call it names here."""
        to, ref = message.get("from"), message.get("ref")
        if not isinstance(to, str) or not isinstance(ref, str):
            return
        peer = _Peer(self, to, ref)
        retry_id = message.get("id")
        waiting = self.bridge.waiting.pop(message.get("h"), None)  # type: ignore[arg-type]
        if waiting is None:
            peer.send(jsonrpc.error(retry_id, RpcError(
                INVALID_PARAMS, "Invalid requestState: it was used already, or the call it "
                "belongs to has ended")))
            return
        original = waiting.request
        exchange = Exchange(self.bridge.gateway.modern, peer, retry_id, original.method or "")
        peer.exchanges[retry_id] = exchange
        self.taken[ref] = exchange
        capabilities = message.get("capabilities")
        log_rank = message.get("log_rank")
        retry = Request(retry_id, original.caller, exchange, MODERN,
                        capabilities if isinstance(capabilities, dict) else {},
                        log_rank if isinstance(log_rank, int) else None)
        params = message.get("params")
        log.info("resuming call %r of %s for a retry on instance %s", original.id,
                 original.mount_id, to)
        self.bridge.continue_call(waiting, retry, params if isinstance(params, dict) else {})

    # -- messages -------------------------------------------------------------------------

    def on_message(self, message: dict[str, Any]) -> None:
        """Take the messages of forwarded retries (others are for other handlers)."""
        kind = message.get("kind")
        if kind == RESUME:
            self._resume(message)
        elif kind == RESUMED:
            self._resumed(message)
        elif kind == CANCEL and (taken := self.taken.pop(message.get("ref"), None)):  # type: ignore[arg-type]
            log.info("call %r cancelled: its retry on another instance was withdrawn",
                     taken.request_id)
            taken.cancel("the client withdrew its retry")

    def post(self, instance: str, message: dict[str, Any]) -> None:
        """Queue a message for another instance; queued messages go out in order."""
        self._outbox.append((instance, message))
        if not self._flushing:
            self._flushing = True
            self.bridge.gateway.spawn(self._flush())

    async def _flush(self) -> None:
        try:
            while self._outbox:
                instance, message = self._outbox.pop(0)
                try:
                    await self.state.publish(instance, message)
                except Exception as exc:
                    log.warning("a message of a resumed call for instance %s was lost (%s)",
                                instance, exc)
        finally:
            self._flushing = False
