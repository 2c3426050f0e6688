"""The 2026-07-28 era over HTTP: stateless ``tools/call`` with no session.

Targets: the fixture served over HTTP in-process by aiohttp answering modern requests
(``direct``), and the gateway's ``http`` front with the fixture as its one stdio mount, asked
in the modern era (``gateway``). Each client is one keep-alive connection sending calls that
carry the ``_meta`` envelope and the modern headers; no ``initialize``, no session id.
"""

from __future__ import annotations

import contextlib
from typing import Any

from bench.http_client import ACCEPT_BOTH, ACCEPT_JSON
from bench.procs import PYTHON, ServerProcess, fixture_mount
from bench.scenarios.common import MOUNT, Workspace, http_unavailable, interleaved
from bench.scenarios.http import measure_load
from bench.settings import BenchSettings
from bench.stats import median_of_runs

TARGETS = ("direct", "gateway")
#: the numbers of concurrent clients measured
LEVELS = (8, 32)


def run(settings: BenchSettings) -> dict[str, Any]:
    """Every level, both targets interleaved; medians over the repetitions."""
    reason = http_unavailable()
    if reason is not None:
        return {"status": "skipped", "reason": reason}
    space = Workspace(settings, "modern")
    with contextlib.ExitStack() as stack:
        direct = ServerProcess(space.command([PYTHON, "-m", "bench.http_fixture"]),
                               space.log("direct"))
        stack.callback(direct.close)
        gateway = ServerProcess(space.gateway("gateway", {MOUNT: fixture_mount()}, front="http"),
                                space.log("gateway"))
        stack.callback(gateway.close)
        plan = {
            "direct": (direct, "tool_0", ACCEPT_JSON),
            "gateway": (gateway, f"{MOUNT}__tool_0", ACCEPT_BOTH),
        }

        def measure(name: str, clients: int, calls: int) -> dict[str, float]:
            return measure_load(*plan[name], clients, calls, modern=True)

        for name in TARGETS:  # warm up both paths once
            measure(name, 8, max(64, settings.http_calls // 4))
        levels: dict[str, Any] = {}
        for clients in LEVELS:
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in TARGETS}
            for _, name in interleaved(settings.reps, TARGETS):
                runs[name].append(measure(name, clients, settings.http_calls))
            levels[str(clients)] = {
                name: {**median_of_runs(runs[name]), "runs": runs[name]} for name in TARGETS}
    return {"status": "ok", "levels": levels}
