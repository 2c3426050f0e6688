"""The adaptive balancers, installed from the vmcp-lb-adaptive distribution."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vmcp.plugins import load_driver


@dataclass(eq=False)
class Copy:
    """A replica as a balancer sees it."""

    replica_id: str
    available: bool = True
    in_flight: int = 0


def replicas(count: int) -> list[Copy]:
    return [Copy(f"r{n}") for n in range(count)]


@pytest.mark.parametrize("name", ["least_request", "peak_ewma", "ring_hash"])
def test_drivers_load_through_entry_points(name: str) -> None:
    balancer = load_driver("balancers", name)()
    pool = replicas(3)
    assert balancer.pick(pool, "session") in pool


@pytest.mark.parametrize("name", ["least_request", "peak_ewma", "ring_hash"])
def test_unavailable_replicas_are_never_picked(name: str) -> None:
    balancer = load_driver("balancers", name)(seed=1)
    pool = replicas(4)
    for replica in pool[:3]:
        replica.available = False
    assert {balancer.pick(pool, f"s{n}").replica_id for n in range(50)} == {"r3"}
    pool[3].available = False
    assert balancer.pick(pool, "s") is None


def test_least_request_prefers_the_less_loaded() -> None:
    balancer = load_driver("balancers", "least_request")(seed=7)
    pool = replicas(2)
    pool[0].in_flight = 5
    assert all(balancer.pick(pool) is pool[1] for _ in range(20))


def test_peak_ewma_moves_traffic_away_from_a_slow_replica_and_back() -> None:
    now = [0.0]
    balancer = load_driver("balancers", "peak_ewma")(clock=lambda: now[0], seed=3,
                                                      decay_seconds=1.0)
    fast, slow = replicas(2)
    balancer.observe(fast, 0.010, True)
    balancer.observe(slow, 0.500, True)  # a peak is taken at once
    assert all(balancer.pick([fast, slow]) is fast for _ in range(20))
    for _ in range(20):  # the slow replica recovers; its estimate decays towards 10 ms
        now[0] += 1.0
        balancer.observe(slow, 0.005, True)
    assert balancer.latency(slow) < balancer.latency(fast)
    assert balancer.pick([fast, slow]) is slow


def test_peak_ewma_counts_failures_as_slow() -> None:
    balancer = load_driver("balancers", "peak_ewma")(seed=3)
    good, bad = replicas(2)
    balancer.observe(good, 0.05, True)
    balancer.observe(bad, 0.001, False)
    assert balancer.pick([good, bad]) is good


def test_ring_hash_is_sticky_and_remaps_little_when_a_replica_joins() -> None:
    balancer = load_driver("balancers", "ring_hash")()
    pool = replicas(4)
    sessions = [f"session-{n}" for n in range(2000)]
    before = {s: balancer.pick(pool, s).replica_id for s in sessions}
    assert before == {s: balancer.pick(pool, s).replica_id for s in sessions}
    assert len(set(before.values())) == 4
    grown = [*pool, Copy("r4")]
    after = {s: balancer.pick(grown, s).replica_id for s in sessions}
    moved = [s for s in sessions if after[s] != before[s]]
    assert all(after[s] == "r4" for s in moved)  # sessions only move to the newcomer
    assert 0.10 < len(moved) / len(sessions) < 0.30  # about 1/5 of them


def test_ring_hash_falls_over_to_the_next_replica_and_returns() -> None:
    balancer = load_driver("balancers", "ring_hash")()
    pool = replicas(3)
    owner = balancer.pick(pool, "s")
    owner.available = False
    stand_in = balancer.pick(pool, "s")
    assert stand_in is not owner and stand_in is not None
    owner.available = True
    assert balancer.pick(pool, "s") is owner
