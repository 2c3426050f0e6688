"""Giving memory back to the system once a load is gone.

A gateway that served thousands of sessions keeps, after they are gone, what CPython's
allocators hold on to: cyclic garbage awaiting a full collection (the serving gateway
collects its oldest generation rarely, see ``GC_YOUNG_THRESHOLD``), the interpreter's free
lists, and the C heap's free pages, which glibc returns only from its top. :class:`MemoryRelease`
runs, off the hot path, one step that lets go of all three: a full ``gc.collect()`` (which
also clears the free lists, so that pymalloc can unmap the arenas they alone kept) and, on
glibc, ``malloc_trim(0)``. Other C libraries skip the trim.

The rule (:meth:`LoadWatch.note`, :meth:`MemoryRelease.request`): the step is asked for when
a table of sessions falls to a quarter of its peak (:data:`FALL`), that peak being at least
:data:`MIN_PEAK` sessions; it runs :data:`RELEASE_DELAY` seconds after the table last fell
(so that a drain in progress is finished first), at most :data:`MAX_DEFER` seconds after it
was first asked for, and never sooner than :data:`MIN_INTERVAL` seconds after the previous
one. A steady load never asks for it: its tables do not fall that far.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("vmcp.memory")

#: a table that falls to this share of its peak asks for a release
FALL = 0.25
#: the smallest peak worth a release: a smaller load leaves too little to give back
MIN_PEAK = 100
#: seconds after the last fall before the release runs
RELEASE_DELAY = 1.0
#: the longest a release waits for the falls to stop, in seconds from the first ask
MAX_DEFER = 5.0
#: seconds at least between two releases
MIN_INTERVAL = 30.0


def glibc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None where the C library has none (musl, macOS)."""
    import ctypes  # here, not at import: the gateway's start-up does not pay for it

    try:
        trim = ctypes.CDLL(None).malloc_trim  # the symbols the process has loaded
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


def _untrimmed() -> None:
    """The trim where there is none."""


@dataclass(frozen=True, slots=True)
class Released:
    """What one release did: the objects the collection found unreachable and how long the
    whole step held the event loop, in seconds."""

    collected: int
    pause: float


class MemoryRelease:
    """Runs the release step on the event loop when asked, within the rate rule above.

    ``trim``: the C heap's trim (by default glibc's, looked up at the first release; none
    elsewhere); ``clock``: the rate rule's clock (``time.monotonic``)."""

    def __init__(
        self,
        *,
        min_peak: int = MIN_PEAK,
        delay: float = RELEASE_DELAY,
        max_defer: float = MAX_DEFER,
        min_interval: float = MIN_INTERVAL,
        trim: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_peak = min_peak
        self._delay = delay
        self._max_defer = max_defer
        self._min_interval = min_interval
        self._trim = trim
        self._clock = clock
        self._timer: asyncio.TimerHandle | None = None
        #: when the pending release was first asked for, and when it is due (``clock``)
        self._asked = 0.0
        self._due = 0.0
        self._last: float | None = None
        self._watches: list[LoadWatch] = []
        self._compactors: list[Callable[[], None]] = []
        #: releases run so far, and the last one's figures (for tests and the log)
        self.count = 0
        self.last: Released | None = None
        #: awaited by tests: set once a release has run
        self.ran = asyncio.Event()

    def watch(self) -> LoadWatch:
        """A watch over one table of sessions: :meth:`LoadWatch.note` its size as it falls."""
        watch = LoadWatch(self)
        self._watches.append(watch)
        return watch

    def before_release(self, rebuild: Callable[[], None]) -> None:
        """Call ``rebuild`` at the start of each release: it rebuilds tables a load grew (a
        dict or set keeps the size it grew to, however few entries are left: see
        :func:`compact`)."""
        self._compactors.append(rebuild)

    @property
    def due(self) -> float | None:
        """When (``clock`` time) the pending release runs; None when none is pending."""
        return self._due if self._timer is not None else None

    def request(self) -> None:
        """Ask for a release: it runs once the asks have stopped for ``delay`` seconds (at
        most ``max_defer`` after the first) and ``min_interval`` after the last one."""
        now = self._clock()
        if self._timer is None:
            self._asked = now
        due = min(now + self._delay, self._asked + self._max_defer)
        if self._last is not None:
            due = max(due, self._last + self._min_interval)
        self._due = due
        if self._timer is None:
            self._arm()

    def _arm(self) -> None:
        wait = max(0.0, self._due - self._clock())
        self._timer = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._clock() < self._due:  # asked again meanwhile: the falls go on
            self._arm()
            return
        self.release()

    def release(self) -> Released:
        """Run the step now (the timer's work; the rate rule is the caller's business)."""
        started = time.perf_counter()
        for watch in self._watches:
            watch.peak = 0
        for rebuild in self._compactors:
            rebuild()
        collected = gc.collect()
        if self._trim is None:
            self._trim = glibc_trim() or _untrimmed
        self._trim()
        done = Released(collected, time.perf_counter() - started)
        self._last = self._clock()
        self.count += 1
        self.last = done
        log.info("memory released after a load: %d objects collected, the loop held %.1f ms",
                 done.collected, done.pause * 1000)
        self.ran.set()
        return done

    def close(self) -> None:
        """Cancel a pending release (the gateway stops)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class LoadWatch:
    """The peak of one table of sessions, and the ask for a release when it falls far."""

    __slots__ = ("_release", "peak")

    def __init__(self, release: MemoryRelease) -> None:
        self._release = release
        #: the largest size noted since the last release
        self.peak = 0

    def note(self, size: int) -> None:
        """The table holds ``size`` entries now (called as entries leave it: a comparison
        or two). At :data:`FALL` of a peak of at least ``min_peak`` a release is asked for."""
        if size > self.peak:
            self.peak = size
        elif self.peak >= self._release.min_peak and size <= self.peak * FALL:
            self._release.request()


def compact(table: dict[Any, Any] | set[Any]) -> None:
    """Rebuild a dict or set in place at the size of what it holds now: ``clear()`` frees the
    table a load grew (deleting entries never shrinks it), and refilling makes one to fit.
    Order (dicts, ``OrderedDict``) and identity are kept."""
    if isinstance(table, dict):
        items = list(table.items())
        table.clear()
        table.update(items)
    else:
        members = list(table)
        table.clear()
        table.update(members)


def compact_all(*tables: dict[Any, Any] | set[Any]) -> None:
    """:func:`compact` each of ``tables``."""
    for table in tables:
        compact(table)
