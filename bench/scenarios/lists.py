"""``tools/list`` over many mounts (20 x 50 = 1,000 tools by default), cold and warm.

Every figure is the time, at the client, to read the whole list (every page):

* ``direct``: one fixture backend listing all the tools itself, in one answer;
* ``warm``: the gateway with backends that announce ``listChanged``, so it answers from its
  namespace snapshot, with the default page size (the client follows ``nextCursor``);
* ``warm_one_page``: the same with ``page_size`` at least the list's length;
* ``cold``: backends that do not announce changes and ``list_ttl = 0``, so every read makes the
  gateway re-read every mount before answering (one page, so that is one re-read per read).
"""

from __future__ import annotations

import contextlib
from typing import Any

from bench.procs import fixture_argv, fixture_mount
from bench.scenarios.common import Workspace, interleaved
from bench.settings import BenchSettings
from bench.stats import latency_summary, median_of_runs
from bench.stdio_client import StdioTarget

TARGETS = ("direct", "warm", "warm_one_page", "cold")


def run(settings: BenchSettings) -> dict[str, Any]:
    """Measure the four targets, interleaved; medians over the repetitions."""
    space = Workspace(settings, "tools_list")
    mounts, tools = settings.list_mounts, settings.list_tools
    total = mounts * tools

    def table(list_changed: bool) -> dict[str, dict[str, Any]]:
        return {f"m{n:02d}": fixture_mount(tools, list_changed) for n in range(mounts)}

    commands = {
        "direct": space.command(fixture_argv(total)),
        "warm": space.gateway("warm", table(True)),
        "warm_one_page": space.gateway("warm1", table(True), {"page_size": total}),
        "cold": space.gateway("cold", table(False), {"page_size": total, "list_ttl": 0}),
    }
    reads = {name: settings.cold_reads if name == "cold" else settings.list_reads
             for name in TARGETS}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in TARGETS}
    pages: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        targets: dict[str, StdioTarget] = {}
        for name in TARGETS:
            target = StdioTarget(commands[name], space.root, space.log(name))
            stack.callback(target.close)
            target.initialize()
            target.timed_lists(2, total)  # warm up
            targets[name] = target
        for _, name in interleaved(settings.reps, TARGETS):
            nanos, pages[name] = targets[name].timed_lists(reads[name], total)
            runs[name].append(latency_summary(nanos))
    return {
        "status": "ok",
        "mounts": mounts,
        "tools": total,
        "targets": {
            name: {**median_of_runs(runs[name]), "pages": pages[name], "runs": runs[name]}
            for name in TARGETS
        },
    }
