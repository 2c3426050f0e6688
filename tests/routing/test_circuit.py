"""The circuit breaker's state machine, on a clock the test moves."""

from __future__ import annotations

from vmcp.routing.circuit import CircuitBreaker, CircuitSettings
from vmcp.testing import ManualClock


def breaker(clock: ManualClock, **settings: float) -> CircuitBreaker:
    return CircuitBreaker(CircuitSettings(**settings), clock)  # type: ignore[arg-type]


def test_consecutive_failures_open_it_and_a_success_resets_the_count() -> None:
    b = breaker(ManualClock(), failure_threshold=3, min_requests=100)
    for ok in (False, False, True, False, False):
        b.record(ok)
    assert b.state == "closed"
    b.record(False)
    assert b.state == "open" and not b.allows()


def test_the_failure_rate_over_the_window_opens_it() -> None:
    b = breaker(ManualClock(), failure_threshold=100, min_requests=10, failure_rate=0.5)
    for n in range(9):
        b.record(n % 2 == 0)  # 5 ok, 4 failed
    assert b.state == "closed"
    b.record(False)  # 5 of 10 failed
    assert b.state == "open"


def test_failures_that_left_the_window_no_longer_count() -> None:
    clock = ManualClock()
    b = breaker(clock, failure_threshold=100, min_requests=4, failure_rate=0.5, window_seconds=10)
    for _ in range(3):
        b.record(False)
    clock.now += 12  # past the window and one bucket
    for _ in range(3):
        b.record(True)
    b.record(False)  # 1 failure in 4 recent calls
    assert b.state == "closed"
    b.record(False)
    b.record(False)  # 3 of 6 recent calls
    assert b.state == "open"


def test_open_then_half_open_then_closed_by_a_successful_probe() -> None:
    clock = ManualClock()
    b = breaker(clock, failure_threshold=1, open_seconds=5, half_open_probes=1)
    b.record(False)
    assert b.state == "open" and not b.allows()
    clock.now += 5
    assert b.allows()
    b.before_call()
    assert b.state == "half_open" and not b.allows()  # its one probe is out
    b.record(True)
    assert b.state == "closed" and b.allows()


def test_a_failed_probe_opens_it_again() -> None:
    clock = ManualClock()
    b = breaker(clock, failure_threshold=1, open_seconds=5)
    b.record(False)
    clock.now += 5
    b.before_call()
    b.record(False)
    assert b.state == "open" and not b.allows()


def test_a_disabled_breaker_never_opens() -> None:
    b = breaker(ManualClock(), enabled=False, failure_threshold=1)
    for _ in range(50):
        b.record(False)
    assert b.state == "closed" and b.allows()
