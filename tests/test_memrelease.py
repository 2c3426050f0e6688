"""The release step that gives memory back once a load is gone: when it is asked for (a table
of sessions fallen to a quarter of its peak), its rate rule, what it does."""

from __future__ import annotations

import gc
import sys

import anyio
import pytest

from vmcp.memrelease import FALL, MIN_INTERVAL, MemoryRelease, compact, glibc_trim
from vmcp.testing import ManualClock

pytestmark = pytest.mark.anyio


class Cycle:
    """An object in a reference cycle with itself: only a collection frees it."""

    def __init__(self) -> None:
        self.me = self


def test_compact_gives_back_the_table_a_load_grew_keeping_order_and_identity() -> None:
    table = {n: n for n in range(5000)}
    members = set(range(5000))
    for n in range(10, 5000):
        del table[n]
        members.discard(n)
    grown, grown_set = sys.getsizeof(table), sys.getsizeof(members)
    same, same_set = table, members
    table[3] = table.pop(3)  # order: 3 is now last
    compact(table)
    compact(members)
    assert table is same and members is same_set
    assert list(table) == [0, 1, 2, 4, 5, 6, 7, 8, 9, 3]
    assert members == set(range(10))
    assert sys.getsizeof(table) < grown / 10 and sys.getsizeof(members) < grown_set / 10


async def test_a_table_fallen_to_a_quarter_of_its_peak_asks_for_a_release() -> None:
    trims: list[None] = []
    release = MemoryRelease(min_peak=8, delay=0.0, trim=lambda: trims.append(None))
    watch = release.watch()
    rebuilt: list[None] = []
    release.before_release(lambda: rebuilt.append(None))
    for size in range(40, int(40 * FALL), -1):  # 40 ... 11: above a quarter of the peak
        watch.note(size)
    assert release.due is None and watch.peak == 40
    Cycle()
    watch.note(10)
    assert release.due is not None
    with anyio.fail_after(5):
        await release.ran.wait()
    assert release.count == 1 and trims == [None] and rebuilt == [None]
    assert release.last is not None and release.last.collected >= 1  # the cycle
    assert 0 <= release.last.pause < 1
    assert watch.peak == 0  # counted again from the next size noted


def test_a_small_table_never_asks() -> None:
    release = MemoryRelease(min_peak=100, trim=lambda: None)
    watch = release.watch()
    for size in range(99, -1, -1):
        watch.note(size)
    assert release.due is None


async def test_asks_while_the_table_falls_push_the_release_back_within_a_bound() -> None:
    clock = ManualClock(100.0)
    release = MemoryRelease(min_peak=1, delay=1.0, max_defer=5.0, trim=lambda: None,
                            clock=clock)
    try:
        release.request()
        assert release.due == 101.0
        clock.now = 103.0
        release.request()
        assert release.due == 104.0  # a second after the last ask...
        clock.now = 104.5
        release.request()
        assert release.due == 105.0  # ...but at most five after the first
    finally:
        release.close()
    assert release.due is None


async def test_releases_are_at_least_min_interval_apart() -> None:
    clock = ManualClock(100.0)
    release = MemoryRelease(delay=1.0, trim=lambda: None, clock=clock)
    release.release()
    clock.now = 110.0
    try:
        release.request()
        assert release.due == 100.0 + MIN_INTERVAL
    finally:
        release.close()


def test_the_release_collects_cyclic_garbage_and_trims_where_glibc_is() -> None:
    gc.collect()
    Cycle()
    done = MemoryRelease().release()  # the default trim: glibc's when it is there
    assert done.collected >= 1
    trim = glibc_trim()
    assert trim is not None or sys.platform != "linux" or "musl" in sys.version.lower()
    if trim is not None:
        assert trim() in (0, 1)  # 1: memory was given back
