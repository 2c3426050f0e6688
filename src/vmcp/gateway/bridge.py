"""Bridging a backend's need for input between the eras.

Two directions:

- A handshake-era backend asks (``sampling/createMessage``, ``elicitation/create``,
  ``roots/list``) while serving a 2026-07-28 request. That era has no server->client requests:
  the gateway answers the client's call with ``input_required`` naming exactly that request,
  and keeps the backend's call waiting in a :class:`WaitingCall`. The client's retry (a new
  id, ``inputResponses`` and the sealed ``requestState``) resumes it: the answer goes to the
  backend, the original :class:`~vmcp.routing.request.Request` is re-bound to the retry's
  sink and id, and whatever the backend sends next (another question, the result) reaches
  the retry. A client that never retries releases the call at its timeout, and the backend
  hears ``notifications/cancelled``.
- A 2026-07-28 backend answers ``input_required`` to a handshake-era request: the gateway
  asks the session's client each input request as a server->client request (its
  capabilities checked) and sends the call again with the answers and the backend's
  untouched ``requestState``, until a final result comes.

A modern backend's ``input_required`` for a modern client passes through, its state sealed
inside the gateway's so that the retry is known to come from the same caller.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, Any

from vmcp.gateway.modern import ROUTED, caller_key
from vmcp.gateway.resume_remote import RemoteResumes
from vmcp.gateway.sealing import StateSealer
from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import (
    BACKEND_UNAVAILABLE,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    RpcError,
)
from vmcp.routing.request import Request, missing_capability, refused_for_capability
from vmcp.transports.base import JsonMessage

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway
    from vmcp.gateway.modern import Exchange
    from vmcp.gateway.remote import Remote
    from vmcp.gateway.session import FrontSession
    from vmcp.registry.mount import Replica
    from vmcp.upstream.session import UpstreamSession

log = logging.getLogger("vmcp.gateway")

#: kinds of sealed state
_WAIT = "wait"
_PASS = "pass"


def _key(upstream: UpstreamSession, message: JsonMessage) -> str:
    """The ``inputRequests`` key standing for one backend request."""
    return f"{upstream.mount_id}.{message.get('id')}"


class WaitingCall:
    """A backend call kept while its modern client answers ``input_required`` (the sink of
    the request until the client retries)."""

    __slots__ = (
        "affinity",
        "asked",
        "asks",
        "bridge",
        "closed",
        "final",
        "handle",
        "inflight",
        "request",
        "tasks",
        "timer",
    )

    def __init__(self, bridge: Bridge, handle: str, request: Request, exchange: Exchange) -> None:
        self.bridge = bridge
        self.handle = handle
        self.request = request
        #: the backend's requests not answered yet, oldest first: (upstream, message)
        self.asks: list[tuple[UpstreamSession, JsonMessage]] = []
        #: how many of ``asks`` the client was asked (the rest came after)
        self.asked = 0
        #: the response that arrived while the client was away
        self.final: JsonMessage | None = None
        self.closed = False
        self.inflight = exchange.inflight
        self.tasks = exchange.tasks
        self.affinity: dict[str, Replica] = exchange.affinity
        self.timer: asyncio.TimerHandle | None = None

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Progress or a log line while nobody listens: the modern era has no stream to
        carry it until the retry comes, so it is dropped (the log line stays in ours)."""
        log.debug("call waiting for input: dropped %s", message.get("method"))

    def deliver(self, request: Request, message: JsonMessage) -> None:
        """The backend's response came while the client was away: the retry gets it."""
        self.final = message

    def fail(self, request_id: Any, err: RpcError) -> None:
        """The call failed while the client was away: the retry gets the error."""
        self.final = jsonrpc.error(request_id, err)

    def relay_request(self, request: Request | None, upstream: UpstreamSession,
                      message: JsonMessage) -> None:
        """The backend asked again before the first answer: the retry asks it next, if the
        client declared what it needs (it may arrive in the same breath as the first ask)."""
        if refused_for_capability(self.request.capabilities, upstream, message):
            return
        self.asks.append((upstream, message))


class Bridge:
    """The gateway's table of waiting calls and its sealer of request states."""

    def __init__(self, gateway: Gateway, state_key: str | None) -> None:
        self.gateway = gateway
        self.sealer = StateSealer(state_key)
        #: handle -> the call waiting for its client's input
        self.waiting: dict[str, WaitingCall] = {}
        #: retries sent to (and taken from) other instances; None without ``[cluster]``
        self.remote: RemoteResumes | None = None

    def join(self, remote: Remote) -> None:
        """Share waiting calls with the deployment's other instances: a retry that reaches
        another instance is sent to the one whose call waits."""
        settings = self.gateway.config.gateway
        self.remote = RemoteResumes(self, remote, self._timeout + settings.request_timeout)

    @property
    def _timeout(self) -> float:
        settings = self.gateway.config.gateway
        return settings.input_timeout or settings.request_timeout

    # -- a handshake-era backend, a modern client -----------------------------------------

    def ask(self, request: Request | None, exchange: Exchange, upstream: UpstreamSession,
            message: JsonMessage) -> None:
        """A backend asked for input while serving ``request``: answer it ``input_required``
        and keep the backend's call waiting for the retry."""
        method = message.get("method")
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        if request is None or exchange.closed:
            upstream.respond(jsonrpc.error(message.get("id"), RpcError(
                INTERNAL_ERROR, f"{method} was sent outside any call of a connected client")))
            return
        if refused_for_capability(request.capabilities, upstream, message):
            return
        self._wait(request, exchange, [(upstream, message)])

    def _wait(self, request: Request, exchange: Exchange,
              asks: list[tuple[UpstreamSession, JsonMessage]]) -> None:
        """Keep the call waiting and answer ``exchange`` with its questions: those asked so
        far and any the backend sends in the same breath (they are gathered until the
        event loop's next turn, so questions sent together are asked in one round)."""
        waiting = WaitingCall(self, secrets.token_urlsafe(18), request, exchange)
        waiting.asks.extend(asks)
        request.sink = waiting
        exchange.hand_over()
        self.waiting[waiting.handle] = waiting
        loop = asyncio.get_running_loop()
        waiting.timer = loop.call_later(self._timeout, self._expire, waiting)
        loop.call_soon(self._ask_client, waiting, exchange)

    def _ask_client(self, waiting: WaitingCall, exchange: Exchange) -> None:
        if waiting.closed or self.waiting.get(waiting.handle) is not waiting:
            return
        waiting.asked = len(waiting.asks)
        exchange.session.send(self._input_required(waiting), waiting.request.id)

    def _input_required(self, waiting: WaitingCall) -> JsonMessage:
        """The ``input_required`` answer asking every question of a waiting call."""
        requests: dict[str, Any] = {}
        for upstream, message in waiting.asks:
            params = message.get("params")
            ask: dict[str, Any] = {"method": message.get("method")}
            if isinstance(params, dict):
                ask["params"] = params
            requests[_key(upstream, message)] = ask
        request = waiting.request
        body = {"h": waiting.handle}
        if self.remote is not None:  # the call waits here: a retry elsewhere is sent here
            body["i"] = self.remote.instance
        state = self.sealer.seal(_WAIT, caller_key(request.caller), self._timeout, body)
        return jsonrpc.result(request.id, {
            "resultType": "input_required",
            "inputRequests": requests,
            "requestState": state,
        })

    def resume(self, retry: Request, method: str, params: dict[str, Any]) -> None:
        """A modern client's retry with a ``requestState``: resume the waiting call it names,
        or pass a modern backend's state back to it."""
        kind, body = self.sealer.open(params.get("requestState"), caller_key(retry.caller))
        if kind == _PASS:
            self._resume_backend_state(retry, method, params, body)
            return
        owner = body.get("i") if kind == _WAIT else None
        if (self.remote is not None and isinstance(owner, str)
                and owner != self.remote.instance):
            self.remote.forward(retry, owner, body.get("h"), params)
            return
        waiting = self.waiting.pop(body.get("h"), None) if kind == _WAIT else None
        if waiting is None:
            raise RpcError(INVALID_PARAMS, "Invalid requestState: it was used already, or the "
                           "call it belongs to has ended")
        self.continue_call(waiting, retry, params)

    def continue_call(self, waiting: WaitingCall, retry: Request, params: dict[str, Any]
                      ) -> None:
        """Go on with a waiting call as ``retry`` (its sink, id and capabilities): answer
        the backend's requests from the retry's ``inputResponses``."""
        if waiting.timer is not None:
            waiting.timer.cancel()
        request = waiting.request
        exchange = retry.sink
        # the call goes on as the retry: same backend call, the retry's sink and id
        for task in waiting.tasks.values():
            exchange.tasks[retry.id] = task
        for entry in waiting.inflight.values():
            exchange.inflight[retry.id] = entry
        request.sink = exchange
        request.id = retry.id
        request.capabilities = retry.capabilities
        request.log_rank = retry.log_rank
        asked, waiting.asks = waiting.asks[:waiting.asked], waiting.asks[waiting.asked:]
        responses = params.get("inputResponses")
        responses = responses if isinstance(responses, dict) else {}
        for upstream, message in asked:
            answer = responses.get(_key(upstream, message))
            if isinstance(answer, dict):
                upstream.respond(jsonrpc.result(message.get("id"), answer))  # type: ignore[arg-type]
            else:
                upstream.respond(jsonrpc.error(message.get("id"), RpcError(
                    INVALID_PARAMS, "the client gave no answer to this request")))
        if waiting.final is not None:  # the call ended while the client was away
            for stale, asked in waiting.asks:
                stale.respond(jsonrpc.error(asked.get("id"), RpcError(
                    BACKEND_UNAVAILABLE, "the call this request belonged to has ended")))
            waiting.final["id"] = retry.id
            exchange.deliver(request, waiting.final)
        elif waiting.asks:
            # the retry may declare less than the first call did
            asks = [(upstream, message) for upstream, message in waiting.asks
                    if not refused_for_capability(request.capabilities, upstream, message)]
            if asks:
                self._wait(request, exchange, asks)

    def _resume_backend_state(self, retry: Request, method: str, params: dict[str, Any],
                              body: dict[str, Any]) -> None:
        state = body.get("s")
        params = {**params, "requestState": state} if state is not None else {
            k: v for k, v in params.items() if k != "requestState"}
        ROUTED[method](self.gateway.dispatch, retry, params)
        if retry.mount_id is not None and retry.mount_id != body.get("m"):
            log.warning("a retry's requestState was minted for mount %s, not %s",
                        body.get("m"), retry.mount_id)

    def _expire(self, waiting: WaitingCall) -> None:
        """The client never came back: release the backend's call."""
        if self.waiting.pop(waiting.handle, None) is None:
            return
        waiting.closed = True
        request = waiting.request
        log.info("call %r of %s released: its client did not answer input_required in time",
                 request.id, request.mount_id)
        self.gateway.router.cancel(waiting, request.id,
                                   "the client did not answer input_required in time")
        for upstream, message in waiting.asks:
            upstream.respond(jsonrpc.error(message.get("id"), RpcError(
                BACKEND_UNAVAILABLE, "the client did not answer in time")))

    def pass_through(self, request: Request, result: dict[str, Any]) -> None:
        """A modern backend's ``input_required`` for a modern client: seal its state in ours
        (so only this caller can bring it back, to this mount)."""
        state = result.get("requestState")
        if state is not None or "inputRequests" not in result:
            result["requestState"] = self.sealer.seal(
                _PASS, caller_key(request.caller), self._timeout,
                {"m": request.mount_id, "s": state})

    # -- a modern backend, a handshake-era client -----------------------------------------

    def ask_session(self, request: Request, session: FrontSession,
                    result: dict[str, Any]) -> None:
        """A modern backend answered ``input_required`` to a handshake-era request: ask the
        session's client, then send the call again with its answers."""
        tasks = session.tasks

        async def run() -> None:
            try:
                params = await self._answers(request, session, result)
                if tasks.get(request.id) is task:
                    del tasks[request.id]
                self.gateway.router.route(request, request.mount_id or "", request.method,
                                          params, request.mapper)
            except asyncio.CancelledError:
                raise
            except RpcError as exc:
                session.fail(request.id, exc)
            except Exception as exc:
                log.exception("answering input_required for %r failed", request.id)
                session.fail(request.id, RpcError(INTERNAL_ERROR, f"Internal error: {exc}"))
            finally:
                if tasks.get(request.id) is task:
                    del tasks[request.id]

        task = asyncio.get_running_loop().create_task(run())
        tasks[request.id] = task

    async def _answers(self, request: Request, session: FrontSession,
                       result: dict[str, Any]) -> dict[str, Any]:
        """Ask the client each input request; the params of the call sent again."""
        asks = result.get("inputRequests")
        answers: dict[str, Any] = {}
        for key, ask in (asks.items() if isinstance(asks, dict) else ()):
            method = ask.get("method") if isinstance(ask, dict) else None
            params = ask.get("params") if isinstance(ask, dict) else None
            params = params if isinstance(params, dict) else {}
            missing = missing_capability(session.client_capabilities, method, params)
            if missing or not isinstance(method, str):
                raise RpcError(METHOD_NOT_FOUND, "The backend needs input the connected client "
                               f"cannot give: {missing or method!r}")
            reply = await session.ask(method, params)
            if "error" in reply:
                raise RpcError.from_error(reply["error"])
            answers[key] = reply.get("result")
        params = {k: v for k, v in request.params.items()
                  if k not in ("inputResponses", "requestState")}
        if answers:
            params["inputResponses"] = answers
        if "requestState" in result:
            params["requestState"] = result["requestState"]
        return params
