"""Outgoing SSE streams of a front session: a bounded replay buffer and the pump that writes it.

Every message for a client is appended to exactly one :class:`EventStream` without waiting
(the gateway must never block on a slow client). At most one HTTP response is attached to a
stream at a time and copies events to the wire; when the client reconnects with
``Last-Event-ID`` a new response replays what came after that event from the buffer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from aiohttp import web

from vmcp_transport_http.messages import encode_message
from vmcp_transport_http.sse import KEEPALIVE, encode_event

log = logging.getLogger("vmcp.transports.http")


class EventStream:
    """An ordered, bounded sequence of messages for one SSE stream.

    Events are numbered from 1; event ids on the wire are ``<key>-<seq>`` so that an id names
    its stream. ``seq`` 0 is the position before the first event (used by priming events).
    """

    def __init__(self, key: str, limit: int, *, with_ids: bool = True) -> None:
        self.key = key
        self.with_ids = with_ids
        self._events: deque[tuple[int, dict[str, Any]]] = deque(maxlen=limit)
        self._last_seq = 0
        self._delivered = 0
        self._finished = False
        self._attachment = 0
        self._version = 0
        self._waiter: asyncio.Future[None] | None = None

    @property
    def finished(self) -> bool:
        """No more events will be appended."""
        return self._finished

    @property
    def delivered(self) -> int:
        """The highest sequence number written to some connection."""
        return self._delivered

    @property
    def backlog(self) -> int:
        """Events appended but not yet written to any connection."""
        return self._last_seq - self._delivered

    def event_id(self, seq: int) -> str | None:
        """The wire id of event ``seq`` (None on a stream without ids)."""
        return f"{self.key}-{seq}" if self.with_ids else None

    def append(self, message: dict[str, Any]) -> None:
        """Queue one message; never blocks. The oldest event is dropped beyond the limit."""
        if self._finished:
            return
        if len(self._events) == self._events.maxlen and self._events[0][0] > self._delivered:
            log.warning("stream %s: client too slow, dropping an undelivered event", self.key)
        self._last_seq += 1
        self._events.append((self._last_seq, message))
        self._wake()

    def finish(self) -> None:
        """No more events: attached pumps end after writing what is buffered."""
        self._finished = True
        self._wake()

    def events_after(self, seq: int) -> list[tuple[int, dict[str, Any]]]:
        """The buffered events numbered above ``seq``."""
        return [event for event in self._events if event[0] > seq]

    def messages(self) -> list[dict[str, Any]]:
        """Every buffered message, oldest first."""
        return [message for _, message in self._events]

    def attach(self) -> int:
        """Claim the stream for a new connection; an earlier one stops at its next event."""
        self._attachment += 1
        self._wake()
        return self._attachment

    def attached(self, token: int) -> bool:
        """Whether the connection holding ``token`` is still the stream's current one."""
        return token == self._attachment

    def mark_delivered(self, seq: int) -> None:
        """Record that event ``seq`` reached a connection."""
        self._delivered = max(self._delivered, seq)

    def drained(self, seq: int) -> bool:
        """Finished, and nothing after ``seq`` is left to write."""
        return self._finished and seq >= self._last_seq

    @property
    def version(self) -> int:
        """A counter bumped by every append, finish and attachment."""
        return self._version

    async def changed(self, since: int, timeout: float | None = None) -> bool:
        """Wait until :attr:`version` differs from ``since``; False on timeout."""
        if self._version != since:
            return True
        if self._waiter is None or self._waiter.done():
            self._waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._waiter), timeout)
        except TimeoutError:
            return False
        return True

    def _wake(self) -> None:
        self._version += 1
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


async def pump(
    stream: EventStream,
    response: web.StreamResponse,
    after: int,
    keepalive: float,
    *,
    first: bytes | None = None,
) -> None:
    """Write ``first``, then the events of ``stream`` numbered above ``after`` as they come.

    Ends the response once the stream is drained, or when another connection takes the stream
    over. A client that goes away ends it early; what it missed stays buffered for a replay.
    """
    token = stream.attach()
    cursor = after
    try:
        if first is not None:
            await response.write(first)
        while stream.attached(token):
            version = stream.version
            for seq, message in stream.events_after(cursor):
                if not stream.attached(token):
                    break
                frame = encode_event(encode_message(message), event_id=stream.event_id(seq))
                await response.write(frame)
                cursor = seq
                stream.mark_delivered(seq)
            if stream.drained(cursor):
                break
            if not await stream.changed(version, keepalive):
                await response.write(KEEPALIVE)
        await response.write_eof()
    except ConnectionResetError:
        log.debug("stream %s: the client went away", stream.key)
