"""Start-up: ``vmcp start`` to the first answered request, with 10 stdio mounts.

Each fixture backend sleeps before serving (standing in for a real server's start-up work):
mount ``n`` of ``N`` for ``slowest * n / N`` seconds. Every figure is the time from spawning
the process to the answer of a ``tools/call`` (after ``initialize``) routed to the slowest
backend:

* ``direct``: the slowest backend started alone, no gateway (the longest of all);
* ``direct_all``: all the backends started at once, no gateway, timed from the first spawn
  to the slowest one's answer (what the machine's cores allow: on 2 CPUs ten Python
  start-ups contend before any gateway is involved);
* ``gateway_empty``: the gateway with no mounts, ``initialize`` only (its own fixed cost);
* ``gateway_one``: the gateway with the slowest backend as its one mount;
* ``gateway_all``: the gateway with all the mounts (they start concurrently).

The gateway targets are timed from their third start on (warm); ``cold`` has the first
start of each in a new home.

Besides, ``own_ms``: the gateway's own time with the same ten mounts, from its spawn to the
spawn of its first backend, and (``imports``) where ``python -X importtime`` says the import
part of it went (see :mod:`bench.ownstart`).
"""

from __future__ import annotations

import time
from typing import Any

from bench.ownstart import first_spawn_ms, import_profile, stamped_mount
from bench.procs import Command, fixture_argv, fixture_mount
from bench.scenarios.common import Workspace, interleaved
from bench.settings import BenchSettings
from bench.stats import median_of_runs
from bench.stdio_client import StdioTarget, call_lines, check_answers

TARGETS = ("direct", "direct_all", "gateway_empty", "gateway_one", "gateway_all")
#: the gateway targets whose first start in a new home is also reported
COLD = ("gateway_one", "gateway_all")


def run(settings: BenchSettings) -> dict[str, Any]:
    """Start each target afresh, interleaved; medians over the repetitions."""
    space = Workspace(settings, "startup")
    count = settings.startup_mounts
    delays = {f"m{n:02d}": round(settings.startup_slowest * n / count, 3)
              for n in range(1, count + 1)}
    slowest = max(delays, key=lambda mount: delays[mount])
    every = {mount: fixture_mount(delay=delay) for mount, delay in delays.items()}
    commands = {
        "gateway_empty": space.gateway("empty", {}),
        "gateway_one": space.gateway("one", {slowest: every[slowest]}),
        "gateway_all": space.gateway("all", every),
    }
    tool = {"gateway_empty": None, "gateway_one": f"{slowest}__tool_0",
            "gateway_all": f"{slowest}__tool_0"}

    def start(command: Command, call: str | None) -> float:
        target = StdioTarget(command, space.root, space.log("start"))
        try:
            target.initialize()
            if call is not None:
                check_answers(target.sequential(call_lines(call, range(1, 2)))[1], range(1, 2))
            return time.perf_counter() - target.started
        finally:
            target.close()

    def start_together() -> float:
        backends = [StdioTarget(space.command(fixture_argv(delay=d)), space.root,
                                space.log("start")) for d in delays.values()]
        try:
            last = backends[list(delays).index(slowest)]
            last.initialize()
            check_answers(last.sequential(call_lines("tool_0", range(1, 2)))[1], range(1, 2))
            return time.perf_counter() - backends[0].started
        finally:
            for backend in backends:
                backend.close()

    stamps = space.root / "spawned"
    stamped_mounts = {mount: stamped_mount(fixture_argv(delay=delay), stamps)
                      for mount, delay in delays.items()}
    stamped = space.gateway("own", stamped_mounts)
    # cold, then one more start whose snapshot keeps the spawns, then the warm ones
    own = [round(first_spawn_ms(stamped, stamps, space.root, space.log("own"),
                                f"{slowest}__tool_0"), 1)
           for _ in range(settings.startup_reps + 2)]
    warm = own[2:]
    # a home of its own: a cold start, as the first of those
    imports = import_profile(space.gateway("own-imports", stamped_mounts), stamps, space.root,
                             space.log("own"))

    # The first two starts of a gateway's home are cold: the first has no front snapshot,
    # and the warm catalog it writes changes the files the second's key covers. The timed
    # starts come after them (warm, as every start of an unchanged configuration is).
    cold = {name: round(start(commands[name], tool[name]), 4) for name in COLD}
    for name in COLD:
        start(commands[name], tool[name])
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in TARGETS}
    for _, name in interleaved(settings.startup_reps, TARGETS):
        if name == "direct":
            each = [start(space.command(fixture_argv(delay=d)), "tool_0")
                    for d in delays.values()]
            runs[name].append({"seconds": round(max(each), 4)})
        elif name == "direct_all":
            runs[name].append({"seconds": round(start_together(), 4)})
        else:
            runs[name].append({"seconds": round(start(commands[name], tool[name]), 4)})
    return {
        "status": "ok",
        "mounts": count,
        "slowest_delay_s": settings.startup_slowest,
        "own_ms": sorted(warm)[len(warm) // 2],
        "own_cold_ms": own[0],
        "own_runs_ms": own,
        "imports": imports,
        "targets": {name: {**median_of_runs(runs[name]), "runs": runs[name]}
                    for name in TARGETS},
        "cold": {name: {"seconds": seconds} for name, seconds in cold.items()},
    }
