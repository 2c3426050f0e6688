"""The built-in ``round_robin`` balancer."""

from __future__ import annotations

from dataclasses import dataclass

from vmcp.routing.round_robin import RoundRobin


@dataclass
class FakeReplica:
    """A replica whose availability the test controls."""

    replica_id: str
    available: bool = True
    in_flight: int = 0


def picks(balancer: RoundRobin, replicas: list[FakeReplica], n: int) -> list[str | None]:
    """The ids of the next ``n`` picks."""
    return [getattr(balancer.pick(replicas), "replica_id", None) for _ in range(n)]


def test_rotates_over_replicas() -> None:
    replicas = [FakeReplica("a"), FakeReplica("b"), FakeReplica("c")]
    assert picks(RoundRobin(), replicas, 7) == ["a", "b", "c", "a", "b", "c", "a"]


def test_skips_unavailable_and_resumes_when_back() -> None:
    replicas = [FakeReplica("a"), FakeReplica("b", available=False), FakeReplica("c")]
    balancer = RoundRobin()
    assert picks(balancer, replicas, 4) == ["a", "c", "a", "c"]
    replicas[1].available = True
    assert picks(balancer, replicas, 3) == ["a", "b", "c"]


def test_none_when_nothing_is_available() -> None:
    balancer = RoundRobin()
    assert balancer.pick([]) is None
    assert balancer.pick([FakeReplica("a", available=False)]) is None


def test_copes_with_the_replica_list_shrinking() -> None:
    balancer = RoundRobin()
    assert picks(balancer, [FakeReplica("a"), FakeReplica("b"), FakeReplica("c")], 2) == ["a", "b"]
    assert picks(balancer, [FakeReplica("x")], 2) == ["x", "x"]


def test_affinity_is_ignored_and_settings_kept() -> None:
    balancer = RoundRobin(weight=1)
    replicas = [FakeReplica("a"), FakeReplica("b")]
    assert balancer.pick(replicas, affinity="s1").replica_id == "a"
    assert balancer.pick(replicas, affinity="s1").replica_id == "b"
    assert balancer.settings == {"weight": 1}
