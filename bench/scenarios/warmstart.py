"""Warm start: ``vmcp start`` to the first answered ``tools/list``, with 10 slow stdio mounts.

The mounts are the start-up scenario's (mount ``n`` of ``N`` sleeps ``slowest * n / N``
seconds before serving). Every figure is the time from spawning the gateway to the answer of
its first ``tools/list`` (after ``initialize``), and that list must hold every mount's tool:

* ``empty``: the gateway with no mount (its own start-up: the interpreter and imports; its
  front snapshot is removed before each run);
* ``cold``: ``warm_catalog = false``: the lists come once every backend is up;
* ``catalog``: the warm catalog kept by an earlier run (one untimed run first), without the
  front snapshot (removed before each run): answered by the gateway from disk while the
  backends start, once it has imported and started itself;
* ``warm``: the front snapshot too (two untimed runs first: one keeps the catalog, the next
  the snapshot): answered by the fast start before the gateway is even imported.

``warm_ms`` is the warm start's time to the answer (the issue's target: 100 ms);
``catalog_added_ms`` is what the warm catalog alone adds to the empty gateway's start.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from bench.procs import Command, fixture_mount
from bench.scenarios.common import Workspace, interleaved
from bench.settings import BenchSettings
from bench.stats import BenchError, median_of_runs
from bench.stdio_client import StdioTarget

TARGETS = ("empty", "cold", "catalog", "warm")


def run(settings: BenchSettings) -> dict[str, Any]:
    """Start each target afresh, interleaved; medians over the repetitions."""
    space = Workspace(settings, "warmstart")
    count = settings.startup_mounts
    every = {f"m{n:02d}": fixture_mount(delay=round(settings.startup_slowest * n / count, 3))
             for n in range(1, count + 1)}
    commands = {"empty": space.gateway("empty", {}),
                "cold": space.gateway("cold", every, {"warm_catalog": False}),
                "catalog": space.gateway("catalog", every),
                "warm": space.gateway("warm", every)}
    expected = {"empty": 0, "cold": count, "catalog": count, "warm": count}
    snapshots = {name: Path(command.env["VMCP_HOME"]) / "cache" / "front"
                 for name, command in commands.items()}

    def first_list(command: Command, count: int) -> float:
        target = StdioTarget(command, space.root, space.log("start"))
        try:
            target.initialize()
            tools = target.request("tools/list").get("tools") or []
            seconds = time.perf_counter() - target.started
        finally:
            target.close()
        if len(tools) != count:
            raise BenchError(f"the first tools/list held {len(tools)} tools, not {count}")
        return seconds

    for name in ("catalog", "warm", "warm"):  # keep the catalog, then the snapshot
        first_list(commands[name], count)
    if not any(snapshots["warm"].glob("*.json")):
        raise BenchError("the warm gateway kept no front snapshot")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in TARGETS}
    for _, name in interleaved(settings.startup_reps, TARGETS):
        if name in ("empty", "catalog"):  # the gateway's own start, not the fast start
            shutil.rmtree(snapshots[name], ignore_errors=True)
        runs[name].append({"seconds": round(first_list(commands[name], expected[name]), 4)})
    targets = {name: {**median_of_runs(runs[name]), "runs": runs[name]} for name in TARGETS}
    return {
        "status": "ok",
        "mounts": count,
        "slowest_delay_s": settings.startup_slowest,
        "targets": targets,
        "warm_ms": round(targets["warm"]["seconds"] * 1000, 1),
        "catalog_added_ms": round(
            (targets["catalog"]["seconds"] - targets["empty"]["seconds"]) * 1000, 1),
    }
