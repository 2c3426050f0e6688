"""Resuming a waiting call on the instance that holds it (``[cluster]`` only).

A 2026-07-28 call bridged to a handshake-era backend that asked for input waits on the
instance that answered ``input_required``: the backend's request is open on that instance's
connection. The sealed ``requestState`` names that instance. A retry that a load balancer
gives to another instance is forwarded to the owner (:mod:`vmcp.gateway.remote`); the owner
resumes the call with a stand-in for the retry's connection, which publishes back every
message of it (progress, log lines, another ``input_required``, the result), and the
retry's instance sends them on the retry's own response.

A retry is refused at once when no instance listens under the owner's name (it is gone: the
client starts the call again), and fails when the owner goes while the retry waits for it. A
retry withdrawn (its client went away) cancels the call on the owner.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from vmcp.gateway.modern import Exchange
from vmcp.gateway.remote import Remote, Reply
from vmcp.protocol.errors import BACKEND_UNAVAILABLE, INVALID_PARAMS, RpcError
from vmcp.routing.request import MODERN, Request
from vmcp.transports.base import JsonMessage

if TYPE_CHECKING:
    from vmcp.gateway.bridge import Bridge

log = logging.getLogger("vmcp.gateway")

#: the kind of a forwarded retry
RESUME = "resume"


def gone(instance: str) -> RpcError:
    """The refusal of a retry whose waiting call was on an instance that is gone."""
    return RpcError(INVALID_PARAMS, f"Invalid requestState: the call it belongs to was "
                    f"waiting on gateway instance {instance!r}, which is gone; start the "
                    "call again")


class _Peer:
    """The stand-in for a retry's connection on the owner: what the resumed call sends
    goes back to the retry's instance, in order."""

    __slots__ = ("exchanges", "reply")

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.exchanges: dict[Any, Exchange] = {}

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Publish a message of the resumed call to the retry's instance."""
        self.reply.send(message)


class RemoteResumes:
    """Both sides of a forwarded retry: the retry's instance and the call's owner."""

    def __init__(self, bridge: Bridge, remote: Remote, timeout: float) -> None:
        self.bridge = bridge
        self.remote = remote
        #: seconds a forwarded retry waits for its call's next message at most
        self.timeout = timeout
        remote.serve(RESUME, self._resume)

    @property
    def instance(self) -> str:
        """This instance's name (the one a ``requestState`` sealed here names)."""
        return self.remote.instance

    # -- the retry's instance -------------------------------------------------------------

    def forward(self, retry: Request, owner: str, handle: Any, params: dict[str, Any]) -> None:
        """Send ``retry`` to the instance whose call it resumes; its messages come back."""
        exchange = retry.sink
        assert isinstance(exchange, Exchange)  # a retry is a 2026-07-28 request
        body = {"h": handle, "id": retry.id, "capabilities": retry.capabilities,
                "log_rank": retry.log_rank,
                "params": {"inputResponses": params.get("inputResponses")}}
        lost = RpcError(BACKEND_UNAVAILABLE, f"gateway instance {owner!r}, where the call "
                        "was waiting for input, went away; start the call again")

        async def relay() -> None:
            try:
                answer = await self.remote.call(
                    owner, RESUME, body, timeout=self.timeout, gone=gone(owner), lost=lost,
                    on_message=lambda message: exchange.session.send(message, retry.id))
            except RpcError as err:
                log.info("forwarded retry %r failed: %s", retry.id, err.message)
                exchange.fail(retry.id, err)
                return
            finally:
                exchange.tasks.pop(retry.id, None)
            exchange.session.send(answer, retry.id)
            exchange.hand_over()  # answered; the call itself lives on its owner

        exchange.tasks[retry.id] = asyncio.get_running_loop().create_task(relay())
        log.debug("retry %r sent to instance %s, whose call it resumes", retry.id, owner)

    # -- the call's owner -----------------------------------------------------------------

    def _resume(self, message: dict[str, Any], reply: Reply) -> None:
        """A retry another instance forwarded: resume the waiting call it names here."""
        retry_id = message.get("id")
        waiting = self.bridge.waiting.pop(message.get("h"), None)  # type: ignore[arg-type]
        if waiting is None:
            raise RpcError(INVALID_PARAMS, "Invalid requestState: it was used already, or the "
                           "call it belongs to has ended")
        peer = _Peer(reply)
        original = waiting.request
        exchange = Exchange(self.bridge.gateway.modern, peer, retry_id, original.method or "")
        peer.exchanges[retry_id] = exchange

        def withdrawn(reason: str) -> None:
            log.info("call %r cancelled: its retry on another instance was withdrawn",
                     exchange.request_id)
            exchange.cancel(reason)

        reply.on_withdraw(withdrawn)
        capabilities = message.get("capabilities")
        log_rank = message.get("log_rank")
        retry = Request(retry_id, original.caller, exchange, MODERN,
                        capabilities if isinstance(capabilities, dict) else {},
                        log_rank if isinstance(log_rank, int) else None)
        params = message.get("params")
        log.info("resuming call %r of %s for a retry on instance %s", original.id,
                 original.mount_id, reply.to)
        self.bridge.continue_call(waiting, retry, params if isinstance(params, dict) else {})
