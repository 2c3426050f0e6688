"""Streamable HTTP sessions shared with the deployment's other instances (``[cluster]``).

A shared session's standalone-stream messages go to its event log in the shared state
(whichever instance holds the client's GET stream delivers them, with the log's ids as SSE
ids, so ``Last-Event-ID`` resumes anywhere); a client's answer to a server->client request
that another instance made is sent there. Nothing here runs for a session that is not
shared.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from vmcp.cluster.base import SharedState
from vmcp.cluster.record import instance_of
from vmcp_transport_http.messages import encode_message
from vmcp_transport_http.sse import KEEPALIVE, message_event

log = logging.getLogger("vmcp.transports.http")

#: the first character of a shared standalone-stream event id (then the log's own id)
SHARED_EVENT = "r"
#: separates the instance from the number in the key of a shared session's POST stream
STREAM_MARK = "~"
#: seconds between two renewals of a used session's record at most (shorter idle
#: timeouts renew four times per timeout)
RENEW_EVERY = 5.0
#: seconds a GET stream waits before reading the log again after the shared state failed
RETRY_READ = 1.0

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class SharedLink:
    """What ties one session to the shared state: its standalone-stream outbox (appended in
    order, a batch per round trip), forwarded answers and the throttled renewal of its
    record."""

    __slots__ = ("_flushing", "_pending", "_spawn", "renewed", "session_id", "state", "ttl")

    def __init__(self, state: SharedState, session_id: str, ttl: float, spawn: Spawn) -> None:
        self.state = state
        self.session_id = session_id
        #: seconds the record lives unless renewed (the front's idle timeout)
        self.ttl = ttl
        #: loop time of the last renewal
        self.renewed = asyncio.get_running_loop().time()
        self._spawn = spawn
        self._pending: list[dict[str, Any]] = []
        self._flushing = False

    def post(self, message: dict[str, Any]) -> None:
        """Queue a standalone-stream message for the session's event log (never blocks)."""
        self._pending.append(message)
        if not self._flushing:
            self._flushing = True
            self._spawn(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self.state.append_events(self.session_id, batch, self.ttl)
                except Exception as exc:
                    log.warning("session %s: %d stream message(s) lost: shared state "
                                "unavailable (%s)", self.session_id[:12], len(batch), exc)
        finally:
            self._flushing = False

    def elsewhere(self, message: dict[str, Any]) -> bool:
        """Send an answer meant for another instance there; False when it is this one's."""
        request_id = message.get("id")
        if type(request_id) is not str:
            return False
        instance = instance_of(request_id)
        if instance is None or instance == self.state.instance:
            return False
        self._spawn(self._forward(instance, message))
        return True

    async def _forward(self, instance: str, message: dict[str, Any]) -> None:
        try:
            await self.state.publish(instance, {"kind": "answer", "session": self.session_id,
                                                "message": message})
        except Exception as exc:
            log.warning("session %s: an answer for instance %s was lost (%s)",
                        self.session_id[:12], instance, exc)

    def renewal_due(self, now: float) -> bool:
        """Whether the record should be renewed now (and, if so, count it as renewed)."""
        if now - self.renewed < min(RENEW_EVERY, self.ttl / 4):
            return False
        self.renewed = now
        return True


def stream_key(instance: str, number: int) -> str:
    """The key of a shared session's POST reply stream: it names its instance."""
    return f"{instance}{STREAM_MARK}{number}"


def stream_instance(last_event_id: str) -> str | None:
    """The instance whose POST reply stream an event id (``<key>-<seq>``) names, or None."""
    key = last_event_id.rpartition("-")[0]
    instance, mark, number = key.rpartition(STREAM_MARK)
    return instance if mark and instance and number.isdigit() else None


def resume_point(last_event_id: str | None) -> str | None:
    """The log id a shared GET stream resumes after (None: the last one delivered)."""
    if last_event_id is None or not last_event_id.startswith(SHARED_EVENT):
        return None
    return last_event_id[len(SHARED_EVENT):] or None


async def pump_shared(
    state: SharedState,
    session_id: str,
    is_open: Callable[[], bool],
    response: web.StreamResponse,
    after: str | None,
    keepalive: float,
) -> None:
    """Write a shared session's standalone stream from its event log while the session is
    open here: what follows ``after``, then each event as it is appended. Quiet stretches
    get a keep-alive comment; a failing shared state is waited out."""
    try:
        while is_open():
            try:
                events = await state.read_events(session_id, after, keepalive)
            except Exception as exc:
                log.debug("session %s: event log unavailable (%s)", session_id[:12], exc)
                await response.write(KEEPALIVE)
                await asyncio.sleep(RETRY_READ)
                continue
            if not events:
                await response.write(KEEPALIVE)
                continue
            await response.write(b"".join(
                message_event(encode_message(message), SHARED_EVENT + event_id)
                for event_id, message in events))
            after = events[-1][0]
            try:
                await state.delivered(session_id, after)
            except Exception as exc:
                log.debug("session %s: delivery mark not kept (%s)", session_id[:12], exc)
        await response.write_eof()
    except ConnectionResetError:
        log.debug("session %s: the client left its shared stream", session_id[:12])
