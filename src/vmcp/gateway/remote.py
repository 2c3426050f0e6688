"""Requests one instance forwards to another through the shared state (``[cluster]`` only).

Some of what a request needs lives on one instance only: a 2026-07-28 call waiting for its
client's input (the backend's request is open on that instance's connection), a
handshake-era task (it is known to its backend's connection there). A request for it that a
load balancer gives to another instance is forwarded to the owner through the shared
state's messages; the owner serves it and publishes back each message of it (progress, log
lines, the response) in order, and the asking instance sends them on its own client's
response. Nothing goes between instances but these messages: no proxying of HTTP, no mesh.

A forwarded request fails at once when no instance listens under the owner's name (it is
gone), and fails when the owner goes while the request waits for it (an instance killed
drops its Redis connection, and with it its subscription). One withdrawn on the asking
instance (its client cancelled it or went away) is withdrawn on the owner.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from vmcp.cluster.base import SharedState
from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import BACKEND_UNAVAILABLE, INTERNAL_ERROR, RpcError
from vmcp.transports.base import JsonMessage

log = logging.getLogger("vmcp.gateway")

#: message kinds of every forwarded request: a message of its answer for the asking
#: instance, the request withdrawn, and a check that an owner still listens
REPLY = "reply"
WITHDRAW = "withdraw"
WATCH = "watch"
#: seconds between two checks that the owners of forwarded requests still listen
WATCH_EVERY = 1.0

#: told how many instances heard a message published, or why it could not be
Sent = Callable[[int | Exception], None]
#: serves, on the owner, one forwarded request (its message) answering through a Reply
Handler = Callable[[dict[str, Any], "Reply"], None]


@dataclass(slots=True)
class _Forwarded:
    """A request sent to its owner, waiting for its response."""

    owner: str
    #: takes each message of the answer before the response
    on_message: Callable[[JsonMessage], None]
    answer: asyncio.Future[JsonMessage]
    #: seconds the owner may stay silent (None: no limit), and the timer counting them
    timeout: float | None
    #: the failure when the owner goes while the request waits
    lost: RpcError
    timer: asyncio.TimerHandle | None = None


class Reply:
    """The owner's way back to the instance that forwarded a request: what is sent goes
    there, in order; the response ends the request."""

    __slots__ = ("ref", "remote", "to")

    def __init__(self, remote: Remote, to: str, ref: str) -> None:
        self.remote = remote
        self.to = to
        self.ref = ref

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Publish a message of the answer to the asking instance."""
        if jsonrpc.classify(message) == jsonrpc.RESPONSE:
            self.remote.taken.pop(self.ref, None)
        self.remote.post(self.to, {"kind": REPLY, "ref": self.ref, "message": message})

    def on_withdraw(self, cancel: Callable[[str], None]) -> None:
        """Call ``cancel`` (with the reason) if the asking instance withdraws the request
        before its response was sent."""
        self.remote.taken[self.ref] = cancel


class Remote:
    """Both sides of forwarded requests: the asking instance and the owner."""

    def __init__(self, state: SharedState, spawn: Callable[[Coroutine[Any, Any, Any]], None]
                 ) -> None:
        self.state = state
        self.spawn = spawn
        #: request kind -> what serves it here, for the instances that forward it
        self.handlers: dict[str, Handler] = {}
        #: ref -> a request this instance forwarded
        self.forwarded: dict[str, _Forwarded] = {}
        #: ref -> how to withdraw a request another instance forwarded here
        self.taken: dict[str, Callable[[str], None]] = {}
        self._outbox: list[tuple[str, dict[str, Any], Sent | None]] = []
        self._flushing = False
        self._watching = False
        state.listen(self.on_message)

    @property
    def instance(self) -> str:
        """This instance's name."""
        return self.state.instance

    def serve(self, kind: str, handler: Handler) -> None:
        """Serve the requests of ``kind`` other instances forward here with ``handler``
        (an RpcError it raises is the request's answer)."""
        self.handlers[kind] = handler

    # -- the asking instance --------------------------------------------------------------

    async def call(
        self, owner: str, kind: str, body: dict[str, Any], *, timeout: float | None,
        gone: RpcError, lost: RpcError,
        on_message: Callable[[JsonMessage], None] | None = None,
    ) -> JsonMessage:
        """Forward a request of ``kind`` (its ``body``) to ``owner``; the response it sends
        back, after passing each message before it to ``on_message``. Cancelled, it is
        withdrawn on the owner.

        :raises RpcError: ``gone`` when no instance listens under the owner's name, ``lost``
            when it went away while the request waited, or the owner stayed silent for
            ``timeout`` seconds (None: as long as it takes).
        """
        ref = secrets.token_urlsafe(12)
        entry = self.forwarded[ref] = _Forwarded(
            owner, on_message or _ignored, asyncio.get_running_loop().create_future(),
            timeout, lost)
        self._arm(ref, entry)

        def sent(heard: int | Exception) -> None:
            if isinstance(heard, Exception):
                self._fail(ref, RpcError(BACKEND_UNAVAILABLE, f"could not reach gateway "
                                         f"instance {owner!r}: shared state unavailable "
                                         f"({heard})"))
            elif not heard:
                self._fail(ref, gone)
            elif not self._watching:
                self._watching = True
                self.spawn(self._watch())

        # sent from the outbox, not awaited here: a withdrawal follows it there, in order,
        # and the cancellation of this wait is never held up by the store
        self.post(owner, {**body, "kind": kind, "ref": ref, "from": self.instance}, sent)
        try:
            return await entry.answer
        except asyncio.CancelledError:
            # awaiting the answer, the cancellation cancelled it too: it was not answered
            if entry.answer.cancelled() or not entry.answer.done():
                self.post(owner, {"kind": WITHDRAW, "ref": ref})
            raise
        finally:
            self.forwarded.pop(ref, None)
            if entry.timer is not None:
                entry.timer.cancel()

    def _arm(self, ref: str, entry: _Forwarded) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
        if entry.timeout is not None:
            entry.timer = asyncio.get_running_loop().call_later(
                entry.timeout, self._fail, ref, RpcError(
                    BACKEND_UNAVAILABLE, f"gateway instance {entry.owner!r} did not answer "
                    f"within {entry.timeout:g}s"))

    def _fail(self, ref: str, err: RpcError) -> None:
        entry = self.forwarded.get(ref)
        if entry is not None and not entry.answer.done():
            entry.answer.set_exception(err)

    async def _watch(self) -> None:
        """While requests wait for their owners, check each owner still listens."""
        try:
            while self.forwarded:
                await asyncio.sleep(WATCH_EVERY)
                for owner in {entry.owner for entry in self.forwarded.values()}:
                    try:
                        heard = await self.state.publish(owner, {"kind": WATCH})
                    except Exception:
                        continue  # the request's own timeout, if any, still ends it
                    if not heard:
                        for ref, entry in list(self.forwarded.items()):
                            if entry.owner == owner:
                                self._fail(ref, entry.lost)
        finally:
            self._watching = False

    def _replied(self, message: dict[str, Any]) -> None:
        ref = message.get("ref")
        entry = self.forwarded.get(ref) if isinstance(ref, str) else None
        sent = message.get("message")
        if entry is None or entry.answer.done() or not isinstance(sent, dict):
            return
        if jsonrpc.classify(sent) == jsonrpc.RESPONSE:
            entry.answer.set_result(sent)
        else:
            entry.on_message(sent)
            self._arm(str(ref), entry)

    # -- the owner ------------------------------------------------------------------------

    def _take(self, handler: Handler, message: dict[str, Any]) -> None:
        to, ref = message.get("from"), message.get("ref")
        if not isinstance(to, str) or not isinstance(ref, str):
            return
        reply = Reply(self, to, ref)
        try:
            handler(message, reply)
        except RpcError as exc:
            reply.send(jsonrpc.error(message.get("id"), exc))
        except Exception as exc:  # a handler's bug costs this request only
            log.exception("a request forwarded by instance %s failed", to)
            reply.send(jsonrpc.error(message.get("id"),
                                     RpcError(INTERNAL_ERROR, f"Internal error: {exc}")))

    # -- messages -------------------------------------------------------------------------

    def on_message(self, message: dict[str, Any]) -> None:
        """Take the messages of forwarded requests (others are for other handlers)."""
        kind = message.get("kind")
        if kind == REPLY:
            self._replied(message)
        elif kind == WITHDRAW:
            cancel = self.taken.pop(message.get("ref"), None)  # type: ignore[arg-type]
            if cancel is not None:
                cancel("the client withdrew its request")
        elif isinstance(kind, str) and (handler := self.handlers.get(kind)) is not None:
            self._take(handler, message)

    def post(self, instance: str, message: dict[str, Any],
             sent: Sent | None = None) -> None:
        """Queue a message for another instance; queued messages go out in order. ``sent``
        is told how many instances heard it, or why it could not be published."""
        self._outbox.append((instance, message, sent))
        if not self._flushing:
            self._flushing = True
            self.spawn(self._flush())

    async def _flush(self) -> None:
        try:
            while self._outbox:
                instance, message, sent = self._outbox.pop(0)
                try:
                    heard: int | Exception = await self.state.publish(instance, message)
                except Exception as exc:
                    log.warning("a message of a forwarded request for instance %s was lost "
                                "(%s)", instance, exc)
                    heard = exc
                if sent is not None:
                    sent(heard)
        finally:
            self._flushing = False


def answer_of(response: JsonMessage) -> dict[str, Any]:
    """The result of a response a forwarded request got back.

    :raises RpcError: it is an error response.
    """
    error = response.get("error")
    if isinstance(error, dict):
        raise RpcError(int(error.get("code", INTERNAL_ERROR)), str(error.get("message", "")),
                       error.get("data"))
    result = response.get("result")
    return result if isinstance(result, dict) else {}


def _ignored(message: JsonMessage) -> None:
    """Drop a message of an answer no one relays."""
