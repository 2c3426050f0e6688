"""The front's limits on their own: the admission queue's turns, order, bound and deadline,
impatient callers, refusals while the event loop stays behind, and the spread of the waits
refused callers are told."""

from __future__ import annotations

import asyncio
import time

import pytest
from vmcp_transport_http.limits import LAG_INTERVAL, LAG_LIMIT, MAX_RETRY_AFTER, Admission

pytestmark = pytest.mark.anyio


async def _queued(admission: Admission) -> asyncio.Future[bool]:
    """A caller of ``enter`` that has reached its wait (its task has run up to it)."""
    waiter = asyncio.ensure_future(admission.enter())
    await asyncio.sleep(0)  # one loop turn: the task runs up to its await
    assert not waiter.done()
    return waiter


async def test_turns_pass_to_waiters_in_arrival_order() -> None:
    admission = Admission(1, 2, 10.0)
    assert await admission.enter()
    first, second = await _queued(admission), await _queued(admission)
    assert not await admission.enter()  # the queue is full: refused at once
    admission.leave()
    assert await first and not second.done()
    admission.leave()
    assert await second
    admission.leave()
    assert admission.held == 0


async def test_a_waiter_gives_up_at_its_deadline() -> None:
    admission = Admission(1, 4, 0.05)
    assert await admission.enter()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await (await _queued(admission))
    assert loop.time() - started >= 0.05
    admission.leave()
    assert admission.held == 0


async def test_a_cancelled_waiter_is_skipped() -> None:
    admission = Admission(1, 4, 10.0)
    assert await admission.enter()
    gone, kept = await _queued(admission), await _queued(admission)
    gone.cancel()
    admission.leave()
    assert await kept
    admission.leave()
    assert admission.held == 0
    assert gone.cancelled()


async def test_a_turn_handed_to_a_caller_that_went_away_is_passed_on() -> None:
    admission = Admission(1, 4, 10.0)
    assert await admission.enter()
    gone, kept = await _queued(admission), await _queued(admission)
    admission.leave()  # the turn is handed to ``gone`` ...
    gone.cancel()  # ... which is cancelled before it runs: ``kept`` gets it
    assert await kept
    admission.leave()
    assert admission.held == 0


async def test_an_impatient_caller_waits_only_behind_a_short_queue() -> None:
    admission = Admission(2, 10, 10.0)
    assert await admission.enter() and await admission.enter()
    first = await _queued(admission)
    waiter = asyncio.ensure_future(admission.enter(patient=False))  # 1 waits, fewer than 2
    await asyncio.sleep(0)
    assert not waiter.done()
    assert not await admission.enter(patient=False)  # 2 wait already: refused at once
    patient = await _queued(admission)  # a patient caller still finds room
    for turn in (first, waiter, patient):
        admission.leave()
        assert await turn
    admission.leave()
    admission.leave()
    assert admission.held == 0


def test_refused_callers_are_told_to_come_back_spread_out() -> None:
    now = [100.0]
    admission = Admission(2, 0, 1.0, retry_after=1, clock=lambda: now[0])
    assert [admission.retry_after() for _ in range(6)] == [1, 2, 2, 3, 3, 4]
    now[0] += 10  # the crowd came back and went: the next refusal waits the least again
    assert admission.retry_after() == 1


def test_the_spread_is_capped() -> None:
    admission = Admission(1, 0, 1.0, retry_after=1, clock=lambda: 0.0)
    waits = [admission.retry_after() for _ in range(MAX_RETRY_AFTER + 5)]
    assert waits[:MAX_RETRY_AFTER] == list(range(1, MAX_RETRY_AFTER + 1))
    assert set(waits[MAX_RETRY_AFTER:]) == {MAX_RETRY_AFTER}


def _work() -> None:
    """Keep the loop busy, without a pause, for longer than the lag it may run late."""
    end = time.monotonic() + LAG_LIMIT + 2 * LAG_INTERVAL
    while time.monotonic() < end:
        pass


async def _behind(admission: Admission) -> None:
    """Requests come in while the loop stays busy past two samples of its lag, as it does
    working through a crowd."""
    for _ in range(2):
        assert await admission.enter()  # a request: the samples go on
        admission.leave()
        _work()
        for _ in range(2):  # the loop turn in which the overdue sample runs
            await asyncio.sleep(0)


async def test_new_sessions_are_refused_while_a_full_front_stays_behind() -> None:
    admission = Admission(2, 4, 10.0)
    assert await admission.enter()  # one turn held throughout
    await _behind(admission)  # the other taken and given back as requests come
    assert await admission.enter()  # every turn held now
    assert not await admission.enter(patient=False)  # full and behind: refused at once
    served = await _queued(admission)  # a caller of a session already served waits its turn
    admission.leave()
    assert await served
    await asyncio.sleep(2 * LAG_INTERVAL)  # a sample on time: the loop has caught up
    opening = asyncio.ensure_future(admission.enter(patient=False))
    await asyncio.sleep(0)
    assert not opening.done()  # it waits for a turn now, instead of being refused
    admission.leave()
    assert await opening
    admission.leave()
    admission.leave()
    assert admission.held == 0


async def test_a_front_with_a_free_turn_takes_a_new_session_however_late_the_loop() -> None:
    admission = Admission(2, 4, 0.01)
    await _behind(admission)
    assert await admission.enter(patient=False)  # a stall of a lightly used front: no crowd
    assert await admission.enter()
    admission.leave()
    admission.leave()


async def test_every_caller_is_refused_while_a_full_front_runs_later_than_it_may_wait() -> None:
    admission = Admission(1, 4, 0.01)
    await _behind(admission)
    assert await admission.enter()  # the one turn, free: taken
    assert not await admission.enter()
    admission.leave()
    assert admission.held == 0


async def test_one_stall_of_the_loop_refuses_nobody() -> None:
    admission = Admission(1, 4, 10.0)
    assert await admission.enter()
    _work()
    for _ in range(2):
        await asyncio.sleep(0)
    opening = asyncio.ensure_future(admission.enter(patient=False))
    await asyncio.sleep(0)
    assert not opening.done()  # the front is full, but one stall is no lag: it waits
    admission.leave()
    assert await opening
    admission.leave()


async def test_new_sessions_are_refused_within_one_long_turn_of_a_full_front() -> None:
    admission = Admission(1, 4, 10.0)
    assert await admission.enter()  # a sample is asked for; the one turn held
    _work()  # a crowd worked through in this same turn: the sample cannot run meanwhile
    assert not await admission.enter(patient=False)
    admission.leave()
