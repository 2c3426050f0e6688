"""The front's limits on their own: the admission queue's turns, order, bound and deadline,
impatient callers, and the spread of the waits refused callers are told."""

from __future__ import annotations

import asyncio

import pytest
from vmcp_transport_http.limits import MAX_RETRY_AFTER, Admission

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
