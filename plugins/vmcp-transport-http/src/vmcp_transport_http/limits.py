"""Limits of the HTTP front: admission control (a bounded wait for a turn) and a token
bucket per caller."""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Any

from vmcp.protocol.errors import BACKEND_UNAVAILABLE, RETRY_AFTER

#: the longest ``Retry-After`` an overloaded front hands out, in seconds
MAX_RETRY_AFTER = 30
#: seconds between two looks at how late the event loop runs (only while POSTs come in)
LAG_INTERVAL = 0.02
#: seconds late the loop may run before new sessions are refused: beyond it the front is
#: behind on the work it has taken already (each reply is that late), and a new session's
#: first exchange, two POSTs, would pay it twice on top of its own cost, three POSTs' worth
LAG_LIMIT = 0.1


class LoopLag:
    """How late the event loop runs a callback asked for :data:`LAG_INTERVAL` ahead: the
    time the work already in it takes. Sampled while the front is in use (:meth:`touch`),
    so an idle front sets no timer.

    :meth:`now` is the lesser of the last two samples, so that one stall (a long
    collection, a moment without the CPU) does not count, only a loop that stays behind;
    or, when larger, how overdue the pending sample is already: a crowd read in one turn
    of the loop is worked through in that same turn, before any sample can run."""

    __slots__ = ("_due", "_handle", "_lag", "_last", "_used")

    def __init__(self) -> None:
        self._lag = 0.0
        self._last = 0.0
        #: when the pending sample is due (``time.monotonic``: the loop's clock may stand
        #: still within a turn)
        self._due = 0.0
        self._used = False
        self._handle: asyncio.TimerHandle | None = None

    def now(self) -> float:
        """Seconds the loop runs late (0.0 when the front was idle)."""
        if self._handle is None:
            return self._lag
        return max(self._lag, time.monotonic() - self._due)

    def touch(self) -> None:
        """Note a request: samples go on until an interval passes without one."""
        self._used = True
        if self._handle is None:
            self._arm()

    def _arm(self) -> None:
        self._due = time.monotonic() + LAG_INTERVAL
        self._handle = asyncio.get_running_loop().call_later(LAG_INTERVAL, self._sample)

    def _sample(self) -> None:
        self._handle = None
        if not self._used:
            self._lag = self._last = 0.0
            return
        late = time.monotonic() - self._due
        self._lag = min(late, self._last)
        self._last = late
        self._used = False
        self._arm()


class Admission:
    """At most ``limit`` holders at once. Beyond it up to ``queue`` callers wait for a turn
    in arrival order, each at most ``max_wait`` seconds; a caller finding the queue full is
    refused at once. An impatient caller (one that would open a session) waits only behind
    fewer than ``limit`` others, and only while the event loop runs less than
    :data:`LAG_LIMIT` late, else it is refused at once too. While the loop runs later than
    ``max_wait`` (or that limit) every caller finding no free turn is refused: each has
    waited that long unread already, and the refusals send their clients away for a while
    (see below). A free turn is always taken: the lag counts only when the front is full.

    Under overload a short wait costs nothing while a refusal costs a round trip and a
    retry: closed-loop clients refused at once would spend the CPU on refusals instead of
    answers. The wait stays bounded, so nobody queues into a timeout. A crowd of new
    sessions would lengthen everyone's wait (and its own first exchange, two POSTs, past
    any bound): it is turned away first, so the sessions already served keep their pace. The
    queue alone does not show such a crowd: its POSTs wait unread in their sockets while
    the loop works through the ones before them, and each takes its turn only once read;
    the loop's lag shows it.

    Refused callers are told when to come back (:meth:`retry_after`) spread out, at most
    ``limit`` a second: a refusal costs the front nearly what an answer does, so a crowd
    told to retry all after the same second would come back as the same crowd and take
    the front's time from the callers it serves.
    """

    __slots__ = ("_base_wait", "_clock", "_held", "_lag", "_limit", "_loop", "_max_wait",
                 "_next_return", "_queue", "_timer", "_waiting")

    def __init__(self, limit: int, queue: int, max_wait: float, retry_after: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lag = LoopLag()
        self._limit = limit
        self._queue = queue
        self._max_wait = max_wait
        self._base_wait = retry_after
        self._clock = clock
        #: when the next refused caller is told to come back (``clock`` time)
        self._next_return = 0.0
        self._held = 0
        #: waiting callers and their deadlines, oldest first (so deadlines are in order)
        self._waiting: deque[tuple[asyncio.Future[bool], float]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        #: the loop the callers wait in, once one has (on Python 3.11 looking the running
        #: loop up is a getpid() system call, and under overload every caller waits)
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def held(self) -> int:
        """Turns held now."""
        return self._held

    @property
    def waiting(self) -> int:
        """Callers waiting for a turn now (one that went away may count until its turn)."""
        return len(self._waiting)

    async def enter(self, patient: bool = True) -> bool:
        """Take a turn, waiting for one if need be: False when refused (the loop runs late,
        the queue is full, or for an impatient caller already ``limit`` long, or no turn
        came within ``max_wait``). A True must be paired with :meth:`leave`."""
        if self.try_enter():
            return True
        lag = self._lag
        # only a full front asks the lag: a lone stall of a lightly used one (a busy
        # machine, a long collection) is no crowd, and refusing then would turn away
        # callers it has room for
        if lag.now() > (max(LAG_LIMIT, self._max_wait) if patient else LAG_LIMIT):
            return False
        if len(self._waiting) >= (self._queue if patient else min(self._queue, self._limit)):
            return False
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((future, loop.time() + self._max_wait))
        if self._timer is None:
            self._timer = loop.call_later(self._max_wait, self._expire)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.result():
                self.leave()  # the turn handed over just before the caller went away
            raise

    def try_enter(self) -> bool:
        """Take a free turn at once, if there is one and nobody waits for it (a True must be
        paired with :meth:`leave`); else False, and :meth:`enter` waits for one."""
        self._lag.touch()
        if self._held < self._limit and not self._waiting:
            self._held += 1
            return True
        return False

    def retry_after(self) -> int:
        """The whole seconds the caller just refused is told to wait: ``retry_after`` when
        refusals are few, later when many came before it, so that at most ``limit`` refused
        callers come back in any one second (up to :data:`MAX_RETRY_AFTER`)."""
        now = self._clock()
        back = max(self._next_return, now + self._base_wait)
        wait = min(MAX_RETRY_AFTER, math.ceil(back - now))
        if wait < MAX_RETRY_AFTER:
            self._next_return = back + 1 / self._limit
        return max(1, wait)

    def leave(self) -> None:
        """Give a turn back: the oldest waiter gets it, else it is free."""
        waiting = self._waiting
        while waiting:
            future, _ = waiting.popleft()
            if not future.done():  # a cancelled waiter is skipped
                future.set_result(True)
                return
        self._held -= 1

    def _expire(self) -> None:
        loop = self._loop
        assert loop is not None  # set by the first caller that waited
        now = loop.time()
        self._timer = None
        waiting = self._waiting
        while waiting:
            future, deadline = waiting[0]
            if not future.done():
                if deadline > now:
                    self._timer = loop.call_at(deadline, self._expire)
                    return
                future.set_result(False)
            waiting.popleft()


class TokenBucket:
    """Allows ``rate`` requests a second on average, ``burst`` at once."""

    __slots__ = ("_burst", "_rate", "_tokens", "at")

    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        #: when a token was last asked for (``time.monotonic``)
        self.at = time.monotonic()

    def take(self) -> float:
        """Spend one token: 0.0 when there was one, else the seconds until there is."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self.at) * self._rate)
        self.at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


class RateLimiter:
    """A :class:`TokenBucket` per key (a caller), shared by all of that caller's sessions.

    A bucket left alone until it is full again is no different from a new one, so it is
    forgotten then: the table holds only callers seen within the last ``burst / rate``
    seconds.
    """

    __slots__ = ("_buckets", "_burst", "_rate", "_refill")

    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._refill = burst / rate
        #: least recently used first
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    @property
    def rate(self) -> float:
        """Requests a second each key may make on average."""
        return self._rate

    def take(self, key: Hashable) -> float:
        """Spend one of ``key``'s tokens: 0.0 when it had one, else the seconds until then."""
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            self._forget_full()
            bucket = buckets[key] = TokenBucket(self._rate, self._burst)
        else:
            buckets.move_to_end(key)
        return bucket.take()

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget_full(self) -> None:
        buckets = self._buckets
        since = time.monotonic() - self._refill
        while buckets:
            key = next(iter(buckets))
            if buckets[key].at > since:
                return
            del buckets[key]


def retry_after(seconds: float) -> dict[str, str]:
    """A ``Retry-After`` header telling a client to wait at least ``seconds`` (whole seconds)."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def shed_wait(error: Any) -> float | None:
    """The seconds a JSON-RPC ``error`` the gateway shed load with asks the client to wait
    (its ``data.retryAfter``); None when it is no such refusal."""
    if not isinstance(error, dict) or error.get("code") != BACKEND_UNAVAILABLE:
        return None
    data = error.get("data")
    wait = data.get(RETRY_AFTER) if isinstance(data, dict) else None
    if isinstance(wait, int | float) and not isinstance(wait, bool):
        return wait
    return None
