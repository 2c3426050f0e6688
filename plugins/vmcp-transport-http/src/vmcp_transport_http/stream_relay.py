"""Resuming a POST's reply stream on another instance than the one that holds it.

A shared session's POST reply stream lives on the instance that served the POST (its event
ids name it: ``g1~7-3``). A client whose stream broke resumes it with a GET carrying
``Last-Event-ID``, which a load balancer may give to any instance. That instance asks the
owner, through the shared state's messages, to replay the stream after that event; the
owner runs its ordinary pump into a stand-in response that publishes what it would write
(events with their ids, keep-alive comments, the end), and the asking instance writes it
on the GET's response. Silence for longer than a few keep-alive intervals means the owner is
gone; the client is then told so (see :func:`foreign_stream_error`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from vmcp.cluster.base import SharedState
from vmcp.protocol.errors import BACKEND_UNAVAILABLE
from vmcp_transport_http.messages import HttpProblem, encode_message
from vmcp_transport_http.sse import message_event
from vmcp_transport_http.streams import pump

if TYPE_CHECKING:
    from vmcp_transport_http.session import HttpSession

log = logging.getLogger("vmcp.transports.http")

REPLAY = "replay"
REPLAYED = "replayed"
STOP = "replay-stop"
#: keep-alive intervals of silence after which the owner counts as gone
SILENCE = 3


def foreign_stream_error(owner: str) -> bytes:
    """The SSE event telling a client its request's stream cannot be resumed: its
    instance is gone (a request not safe to run twice was not run again, see
    :mod:`.commit`)."""
    error = {"code": BACKEND_UNAVAILABLE, "message": (
        f"this request's reply stream was on gateway instance {owner!r}, which is gone; the "
        "request may or may not have been carried out (it was not run again: running it "
        "twice may have effects)")}
    return message_event(encode_message({"jsonrpc": "2.0", "id": None, "error": error}), None)


class _Relayed:
    """The stand-in response the owner's pump writes into: each write is published to the
    asking instance, in order; a stop from there ends the pump at its next write."""

    def __init__(self, relay: StreamRelay, to: str, ref: str) -> None:
        self.relay = relay
        self.to = to
        self.ref = ref
        self.stopped = False

    async def write(self, data: bytes) -> None:
        """Publish one write of the pump."""
        await self._publish(data, False)

    async def write_eof(self, data: bytes = b"") -> None:
        """Publish the pump's last write and the end of the stream."""
        await self._publish(data, True)

    async def _publish(self, data: bytes, end: bool) -> None:
        if self.stopped:
            raise ConnectionResetError("the asking instance's client went away")
        heard = await self.relay.state.publish(self.to, {
            "kind": REPLAYED, "ref": self.ref, "data": data.decode("utf-8"), "end": end})
        if not heard:
            raise ConnectionResetError(f"instance {self.to} is gone")


class StreamRelay:
    """Both sides of a reply stream resumed elsewhere."""

    def __init__(self, state: SharedState, find: Callable[[str], HttpSession | None],
                 keepalive: float, spawn: Callable[[Any], None]) -> None:
        self.state = state
        self._find = find
        self._keepalive = keepalive
        self._spawn = spawn
        #: ref -> what the owner sent for a GET this instance serves
        self._incoming: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        #: ref -> the stand-in response of a stream this instance replays for another
        self._outgoing: dict[str, _Relayed] = {}
        state.listen(self.on_message)

    # -- the instance the GET reached ------------------------------------------------------

    async def resume(self, request: web.BaseRequest, headers: dict[str, str], session_id: str,
                     owner: str, last_event_id: str) -> web.StreamResponse:
        """The GET's response: the owner's replay of the stream after ``last_event_id``."""
        ref = secrets.token_urlsafe(12)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._incoming[ref] = queue
        response = web.StreamResponse(headers=headers)
        try:
            try:
                heard = await self.state.publish(owner, {
                    "kind": REPLAY, "ref": ref, "from": self.state.instance,
                    "session": session_id, "event": last_event_id})
            except Exception as exc:
                log.debug("stream of %s not asked for (%s)", owner, exc)
                heard = 0
            while heard:
                try:
                    async with asyncio.timeout(self._keepalive * SILENCE):
                        part = await queue.get()
                except TimeoutError:
                    break
                if part.get("missing"):
                    raise HttpProblem(404, "Not Found: no stream to resume after that "
                                      "Last-Event-ID")
                if not response.prepared:
                    await response.prepare(request)
                data = part.get("data")
                await response.write(data.encode("utf-8") if isinstance(data, str) else b"")
                if part.get("end"):
                    await response.write_eof()
                    return response
            if not response.prepared:
                await response.prepare(request)
            await response.write_eof(foreign_stream_error(owner))
        except ConnectionResetError:
            with contextlib.suppress(Exception):
                await self.state.publish(owner, {"kind": STOP, "ref": ref})
        finally:
            self._incoming.pop(ref, None)
        return response

    # -- the owner ----------------------------------------------------------------------------

    async def _replay(self, message: dict[str, Any]) -> None:
        to, ref, event = message.get("from"), message.get("ref"), message.get("event")
        session = self._find(str(message.get("session")))
        if not isinstance(to, str) or not isinstance(ref, str) or not isinstance(event, str):
            return
        found = session.find_stream(event) if session is not None else None
        if found is None or found[0].drained(found[1]):
            await self.state.publish(to, {"kind": REPLAYED, "ref": ref, "missing": True})
            return
        assert session is not None
        relayed = self._outgoing[ref] = _Relayed(self, to, ref)
        try:
            # in use meanwhile, as when its own client reads it here: it does not expire
            with session.active(), contextlib.suppress(Exception):
                await pump(found[0], relayed, found[1], self._keepalive)  # type: ignore[arg-type]
        finally:
            self._outgoing.pop(ref, None)

    # -- messages -------------------------------------------------------------------------

    def on_message(self, message: dict[str, Any]) -> None:
        """Take the messages of resumed streams."""
        kind = message.get("kind")
        if kind == REPLAYED:
            queue = self._incoming.get(message.get("ref"))  # type: ignore[arg-type]
            if queue is not None:
                queue.put_nowait(message)
        elif kind == REPLAY:
            self._spawn(self._replay(message))
        elif kind == STOP and (relayed := self._outgoing.get(message.get("ref"))):  # type: ignore[arg-type]
            relayed.stopped = True
