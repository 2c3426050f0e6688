"""How much each scenario measures: the full run, and ``--quick`` (a few seconds, 1 repetition)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class BenchSettings:
    """Counts and sizes of one benchmark run."""

    #: repetitions of every measurement (targets interleaved in each); medians are reported
    reps: int = 5
    #: sequential stdio calls per repetition (after ``warmup`` unrecorded ones)
    latency_calls: int = 3000
    warmup: int = 500
    #: pipelined stdio calls per repetition
    pipeline_calls: int = 20_000
    #: concurrent HTTP clients, and calls per level and repetition (spread over the clients)
    http_levels: tuple[int, ...] = (1, 8, 32, 128)
    http_calls: int = 3000
    #: closed-loop clients per overload level, seconds each level is measured, and the
    #: seconds before that in which its crowd arrives (timed, but not in the rates)
    overload_levels: tuple[int, ...] = (64, 256, 1024, 2048)
    overload_seconds: float = 5.0
    overload_ramp: float = 2.0
    #: the aggregated list: mounts x tools each, and complete reads per repetition
    list_mounts: int = 20
    list_tools: int = 50
    list_reads: int = 100
    cold_reads: int = 30
    #: concurrent HTTP sessions opened for the per-session memory figures (idle, then active:
    #: each active one made ``memory_calls`` calls and holds its GET stream open), and mounts
    #: added for the per-mount one
    memory_sessions: int = 5000
    memory_calls: int = 2
    memory_mounts: int = 20
    memory_reps: int = 3
    #: start-up: mounts, and the simulated start-up work of the slowest (the others less)
    startup_mounts: int = 10
    startup_slowest: float = 1.0
    startup_reps: int = 3
    #: ``--workers`` counts measured (the first is the one the others are compared with),
    #: and the concurrent clients of each level
    worker_counts: tuple[int, ...] = (1, 2, 4)
    worker_levels: tuple[int, ...] = (32, 256)
    #: the soak: its length, the sessions kept alive, new ones a second, seconds between two
    #: calls of a session, the gateway's session idle timeout and SSE keep-alive interval,
    #: and seconds between two samples
    soak_minutes: float = 30.0
    soak_sessions: int = 200
    soak_rate: float = 10.0
    soak_call_interval: float = 1.0
    soak_idle_timeout: float = 10.0
    soak_keepalive: float = 15.0
    soak_sample: float = 5.0
    #: calls whose instructions are counted, per target (under callgrind: about 50x slower)
    counted_calls: int = 3000
    #: the command that replaces ``python -m vmcp`` for the gateway (experiments)
    gateway_launcher: tuple[str, ...] = ()
    #: scenarios to run (all when empty)
    only: tuple[str, ...] = ()
    workdir: Path = field(default_factory=Path)

    @classmethod
    def quick(cls) -> BenchSettings:
        """Tiny counts, one repetition: proves every scenario works, in seconds."""
        return cls(
            reps=1, latency_calls=200, warmup=20, pipeline_calls=500, http_calls=128,
            list_mounts=4, list_tools=10, list_reads=5, cold_reads=3, memory_sessions=50,
            memory_mounts=2, memory_reps=1, startup_mounts=3, startup_slowest=0.05,
            startup_reps=1, overload_levels=(8, 32), overload_seconds=1.0,
            overload_ramp=0.2, worker_counts=(1, 2), worker_levels=(32,),
            soak_minutes=0.1, soak_sessions=20, soak_call_interval=0.1,
            soak_idle_timeout=1.0, soak_keepalive=0.5, soak_sample=0.25, counted_calls=64,
        )

    def with_(self, **changes: object) -> BenchSettings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]
