"""Outgoing SSE streams of a front session: a bounded replay buffer and the pump that writes it.

Every message for a client is appended to exactly one :class:`EventStream` without waiting
(the gateway must never block on a slow client), encoded once as it is appended. At most one
HTTP response is attached to a stream at a time and copies events to the wire; when the
client reconnects with ``Last-Event-ID`` a new response replays what came after that event
from the buffer, which is bounded in events and in bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from aiohttp import web

from vmcp.protocol.jsonrpc import encode_kept_line
from vmcp_transport_http.sse import KEEPALIVE, message_event

log = logging.getLogger("vmcp.transports.http")


class EventStream:
    """An ordered, bounded sequence of messages for one SSE stream.

    Events are numbered from 1; event ids on the wire are ``<key>-<seq>`` so that an id names
    its stream. ``seq`` 0 is the position before the first event (used by priming events).
    """

    __slots__ = (
        "_attachment",
        "_bytes",
        "_delivered",
        "_events",
        "_finished",
        "_last_seq",
        "_limit",
        "_max_bytes",
        "_trim_undelivered",
        "_version",
        "_waiters",
        "key",
        "with_ids",
    )

    def __init__(
        self,
        key: str,
        limit: int | None,
        *,
        max_bytes: int | None = None,
        trim_undelivered: bool = True,
        with_ids: bool = True,
    ) -> None:
        """``limit`` events and ``max_bytes`` (encoded) are kept at most (None: no bound); the
        oldest go first, the newest event always stays. With ``trim_undelivered`` False the
        byte bound lets go of delivered events only (a reply stream, whose undelivered events
        are what its client asked for)."""
        self.key = key
        self.with_ids = with_ids
        # made at the first append: an empty deque takes 0.75 KiB, and most streams (every
        # idle session's GET stream) never hold an event
        self._events: deque[tuple[int, dict[str, Any], bytes]] | tuple[()] = ()
        self._limit = limit
        self._max_bytes = max_bytes
        self._trim_undelivered = trim_undelivered
        self._bytes = 0
        self._last_seq = 0
        self._delivered = 0
        self._finished = False
        self._attachment = 0
        self._version = 0
        self._waiters: list[asyncio.Future[bool]] = []

    @property
    def finished(self) -> bool:
        """No more events will be appended."""
        return self._finished

    @property
    def delivered(self) -> int:
        """The highest sequence number written to some connection."""
        return self._delivered

    @property
    def buffered_bytes(self) -> int:
        """Encoded bytes of the events kept."""
        return self._bytes

    @property
    def backlog(self) -> int:
        """Events appended but not yet written to any connection."""
        return self._last_seq - self._delivered

    def event_id(self, seq: int) -> str | None:
        """The wire id of event ``seq`` (None on a stream without ids)."""
        return f"{self.key}-{seq}" if self.with_ids else None

    def append(self, message: dict[str, Any]) -> None:
        """Queue one message; never blocks. The oldest events are dropped beyond the bounds."""
        if self._finished:
            return
        line = encode_kept_line(message)  # kept until delivered, or for a replay
        self._last_seq += 1
        events = self._events
        if not isinstance(events, deque):
            events = self._events = deque()
        events.append((self._last_seq, message, line))
        self._bytes += len(line)
        self._trim()
        self._wake()

    def _trim(self) -> None:
        events = self._events
        if not isinstance(events, deque):
            return
        limit, max_bytes = self._limit, self._max_bytes
        while len(events) > 1:
            over_count = limit is not None and len(events) > limit
            if not over_count and (max_bytes is None or self._bytes <= max_bytes):
                return
            seq, _, line = events[0]
            if seq > self._delivered:
                if not (over_count or self._trim_undelivered):
                    return
                log.warning("stream %s: client too slow, dropping an undelivered event",
                            self.key)
            events.popleft()
            self._bytes -= len(line)

    def finish(self) -> None:
        """No more events: attached pumps end after writing what is buffered."""
        self._finished = True
        self._wake()

    def events_after(self, seq: int) -> list[tuple[int, bytes]]:
        """The buffered events numbered above ``seq``, each as its encoded line."""
        if seq >= self._last_seq:
            return []
        return [(number, line) for number, _, line in self._events if number > seq]

    def messages(self) -> list[dict[str, Any]]:
        """Every buffered message, oldest first."""
        return [message for _, message, _ in self._events]

    def last(self) -> tuple[dict[str, Any], bytes] | None:
        """The newest buffered message and its encoded line (None: none is buffered)."""
        if not self._events:
            return None
        _, message, line = self._events[-1]  # type: ignore[index]
        return message, line

    def lines(self) -> list[bytes]:
        """Every buffered message encoded (newline-terminated), oldest first."""
        return [line for _, _, line in self._events]

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
        if seq > self._delivered:
            self._delivered = seq
            if self._max_bytes is not None and self._bytes > self._max_bytes:
                self._trim()

    def drained(self, seq: int) -> bool:
        """Finished, and nothing after ``seq`` is left to write."""
        return self._finished and seq >= self._last_seq

    @property
    def version(self) -> int:
        """A counter bumped by every append, finish and attachment."""
        return self._version

    def changed(self, since: int, loop: asyncio.AbstractEventLoop | None = None
                ) -> asyncio.Future[bool]:
        """A future resolved with True once :attr:`version` differs from ``since`` (already
        resolved when it does). No task and no timer: whoever awaits it may resolve it
        first with False to stop waiting (a pump's keep-alive timer does).

        ``loop``: the running loop, when the caller has it (on Python 3.11 each look-up of
        the running loop is a ``getpid`` system call)."""
        future: asyncio.Future[bool] = (loop or asyncio.get_running_loop()).create_future()
        if self._version != since:
            future.set_result(True)
            return future
        if self._waiters:  # drop those resolved by their holder or cancelled
            self._waiters = [waiter for waiter in self._waiters if not waiter.done()]
        self._waiters.append(future)
        return future

    def _wake(self) -> None:
        self._version += 1
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(True)


class EventStreamResponse(web.StreamResponse):
    """An SSE response whose headers leave with its first events, in one write.

    (aiohttp writes a plain :class:`~aiohttp.web.StreamResponse`'s headers at ``prepare``.)
    """

    _send_headers_immediately = False


def encode_events(stream: EventStream, after: int) -> tuple[bytes, int]:
    """The wire form of the buffered events numbered above ``after``, and the number of the
    last of them (``after`` when there is none)."""
    frames = []
    cursor = after
    for seq, line in stream.events_after(after):
        frames.append(message_event(line, stream.event_id(seq)))
        cursor = seq
    return b"".join(frames), cursor


#: a wait of a :class:`SharedTimeout` gives up at most this share of its delay late
TIMEOUT_SLACK = 1 / 8


class SharedTimeout:
    """Waits for a stream to change that give up after the same ``delay``, with one loop
    timer for all of them (a timer of its own would cost each wait more than the rest).
    The timer serves every deadline within :data:`TIMEOUT_SLACK` of the delay in one go: at
    thousands of POSTs a second, a timer set again for each deadline costs each wait
    another timer."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        #: waiting futures and their deadlines, oldest first (so deadlines are in order)
        self._waiting: dict[asyncio.Future[bool], float] = {}
        self._timer: asyncio.TimerHandle | None = None
        #: the loop its waits run on, from the first (one look-up, not one per POST)
        self._loop: asyncio.AbstractEventLoop | None = None

    def changed(self, stream: EventStream, since: int) -> asyncio.Future[bool]:
        """A future resolved once the stream's version differs from ``since`` (True), or
        after the delay (False). A plain function, not a coroutine: it is awaited on every
        POST, and each coroutine level costs every resume of the POST's task."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        future = stream.changed(since, loop)
        if future.done():
            return future
        # left here once resolved, until its deadline passes (dropped at the next expiry)
        self._waiting[future] = loop.time() + self.delay
        if self._timer is None:
            self._timer = loop.call_later(self.delay, self._expire)
        return future

    def _expire(self) -> None:
        loop = self._loop
        assert loop is not None  # armed by a wait
        now = loop.time()
        self._timer = None
        expired = []
        for future, deadline in self._waiting.items():
            if deadline > now:
                self._timer = loop.call_at(max(deadline, now + self.delay * TIMEOUT_SLACK),
                                           self._expire)
                break
            expired.append(future)
        for future in expired:
            del self._waiting[future]
            if not future.done():
                future.set_result(False)


async def pump(
    stream: EventStream,
    response: web.StreamResponse,
    after: int,
    keepalive: float,
    *,
    first: bytes | None = None,
) -> None:
    """Write ``first``, then the events of ``stream`` numbered above ``after`` as they come.

    Whatever is ready goes out in one write, the last events together with the end of the
    response. A stream with nothing written for ``keepalive`` seconds gets a comment (one
    timer per pump, re-armed each time it fires).

    Ends the response once the stream is drained, or when another connection takes the stream
    over. A client that goes away ends it early; what it missed stays buffered for a replay.
    """
    token = stream.attach()
    cursor = after
    loop = asyncio.get_running_loop()
    timer: asyncio.TimerHandle | None = None
    waiting: asyncio.Future[bool] | None = None
    ticked = False
    quiet = True  # nothing written since the timer last fired

    def tick() -> None:
        nonlocal timer, ticked
        timer, ticked = None, True
        if waiting is not None and not waiting.done():
            waiting.set_result(False)

    try:
        while stream.attached(token):
            version = stream.version
            data, cursor = encode_events(stream, cursor)
            if first is not None:
                data, first = first + data, None
            if stream.drained(cursor):
                await response.write_eof(data)
                stream.mark_delivered(cursor)
                return
            if data:
                await response.write(data)
                stream.mark_delivered(cursor)
                quiet = False
            elif ticked and quiet:
                await response.write(KEEPALIVE)
            if ticked:
                ticked, quiet = False, True
            if timer is None:
                timer = loop.call_later(keepalive, tick)
            waiting = stream.changed(version)
            await waiting
            waiting = None
        await response.write_eof()
    except ConnectionResetError:
        log.debug("stream %s: the client went away", stream.key)
    finally:
        if timer is not None:
            timer.cancel()
