"""The front's limits on their own: the admission queue's turns, order, bound and deadline."""

from __future__ import annotations

import asyncio

import pytest
from vmcp_transport_http.limits import Admission

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
