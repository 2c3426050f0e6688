"""A person's sign-in asked through the caller's own client (URL-mode elicitation).

When a caller's connection cannot be made until a person signs in (the transport raised
:class:`~vmcp.transports.signin.SignInNeeded`), and the caller's client declared URL-mode
elicitation, the gateway asks that client, and only that one, to open the sign-in URL: an
``elicitation/create`` with ``mode: "url"`` delivered through the request's sink (a
server->client request in the handshake era, an ``input_required`` answer in the
2026-07-28 era). Once the grant is stored the client hears
``notifications/elicitation/complete`` (where its era has it) and the call goes on. Callers
with the same grant owner share one sign-in in flight: the others wait for it rather than
being shown a URL of their own. A client without URL elicitation gets the refusal, which
names the command that signs in.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Protocol

from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import BACKEND_UNAVAILABLE, RpcError
from vmcp.routing.request import Request, missing_capability
from vmcp.transports.signin import SignInFlow, SignInNeeded

if TYPE_CHECKING:
    from vmcp.transports.base import JsonMessage
    from vmcp.upstream.session import UpstreamSession

log = logging.getLogger("vmcp.gateway")

_ASK = {"mode": "url"}


class Notified(Protocol):
    """Who relays a notification to the client that was asked (the gateway)."""

    def upstream_notification(self, upstream: Any, message: JsonMessage, origin: Any) -> None:
        """Deliver ``message`` as the asker ``upstream``'s notification."""


class _Asker:
    """Stands in for a backend in the gateway's relay of input requests: the client's
    answer to the sign-in's elicitation resolves :attr:`answer`."""

    _ids = itertools.count(1)

    def __init__(self, mount_id: str) -> None:
        #: the mount the sign-in is for (names the request in ``input_required``)
        self.mount_id = mount_id
        self.request_id = f"sign-in-{next(self._ids)}"
        self.answer: asyncio.Future[JsonMessage] = asyncio.get_running_loop().create_future()

    def respond(self, message: JsonMessage) -> None:
        """The client's answer (or the error sent for it: gone, not capable, no answer)."""
        if not self.answer.done():
            self.answer.set_result(message)


class SignIns:
    """The sign-ins in flight through callers' clients, one per grant owner."""

    def __init__(self, relay: Notified) -> None:
        self.relay = relay
        self._running: dict[Hashable, asyncio.Future[None]] = {}
        #: grant owner -> loop time its last sign-in through a client succeeded
        self._finished: dict[Hashable, float] = {}

    @staticmethod
    def worth_signing_in(request: Request, upstream: UpstreamSession) -> bool:
        """Whether a call refused on ``upstream`` should be sent again after a sign-in: the
        connection lost its grant while sending it (so the backend never served it), and
        the caller's client can be asked to sign in. Another client keeps the refusal,
        which says why and which command signs in."""
        return (upstream.connection.sign_in is not None
                and missing_capability(request.capabilities, "elicitation/create", _ASK) is None)

    def refusal(self, mount_id: str, needed: SignInNeeded) -> RpcError:
        """The error a call gets when its connection needs a sign-in it cannot have."""
        return RpcError(BACKEND_UNAVAILABLE, f"Backend {mount_id!r} could not start a "
                        f"connection for this caller: {needed}")

    async def settle(self, request: Request, mount_id: str, needed: SignInNeeded,
                     default_timeout: float, tried_at: float) -> None:
        """Return once a connection may be tried again: this caller's client carried out
        the sign-in, or another caller's sign-in for the same grant owner ended (each
        within the sign-in's timeout, else ``default_timeout``) or succeeded since the
        refused attempt began (loop time ``tried_at``).

        :raises RpcError: the client cannot be asked (the refusal naming the command), or
            the sign-in was declined, failed, or not finished in time.
        """
        timeout = needed.timeout or default_timeout
        if self._finished.get(needed.key, float("-inf")) >= tried_at:
            return
        running = self._running.get(needed.key)
        if running is not None:
            try:
                await asyncio.wait_for(asyncio.shield(running), timeout)
            except TimeoutError:
                raise self.refusal(mount_id, needed) from None
            return
        if needed.start is None or missing_capability(
                request.capabilities, "elicitation/create", _ASK):
            raise self.refusal(mount_id, needed)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._running[needed.key] = done
        try:
            await asyncio.wait_for(self._ask(request, mount_id, needed), timeout)
            self._finished[needed.key] = asyncio.get_running_loop().time()
        except TimeoutError:
            raise RpcError(BACKEND_UNAVAILABLE, f"Backend {mount_id!r}: the sign-in was not "
                           f"finished within {timeout:g} seconds; {needed}") from None
        finally:
            del self._running[needed.key]
            done.set_result(None)

    async def _ask(self, request: Request, mount_id: str, needed: SignInNeeded) -> None:
        assert needed.start is not None
        try:
            flow: SignInFlow = await needed.start()
        except SignInNeeded as exc:
            raise RpcError(BACKEND_UNAVAILABLE, f"Backend {mount_id!r}: cannot start a "
                           f"sign-in: {exc}; {needed}") from exc
        try:
            asker = _Asker(mount_id)
            elicitation_id = secrets.token_urlsafe(18)
            request.sink.relay_request(request, asker, jsonrpc.request(  # type: ignore[arg-type]
                asker.request_id, "elicitation/create",
                {**_ASK, "message": flow.message, "url": flow.url,
                 "elicitationId": elicitation_id}))
            answer = await asker.answer
            error = answer.get("error")
            if error is not None:
                said = error.get("message") if isinstance(error, dict) else error
                raise RpcError(BACKEND_UNAVAILABLE, f"Backend {mount_id!r}: the client did "
                               f"not take the sign-in ({said}); {needed}")
            result = answer.get("result")
            action = result.get("action") if isinstance(result, dict) else None
            if action != "accept":
                raise RpcError(BACKEND_UNAVAILABLE, f"Backend {mount_id!r}: the sign-in was "
                               f"{'declined' if action == 'decline' else 'cancelled'}; "
                               f"{needed}")
            try:
                await flow.finish()
            except SignInNeeded as exc:
                raise RpcError(BACKEND_UNAVAILABLE, f"Backend {mount_id!r}: the sign-in "
                               f"failed: {exc}; {needed}") from exc
            log.info("mount %s: signed in through the client of %s", mount_id,
                     request.caller.session_id)
            self.relay.upstream_notification(asker, jsonrpc.notification(
                "notifications/elicitation/complete", {"elicitationId": elicitation_id}),
                request)
        finally:
            await flow.aclose()
