"""HTTP front -> stdio backend: throughput and latency at several numbers of concurrent clients.

Targets: the fixture served over HTTP in-process by a bare aiohttp server (``direct``, the
stack the gateway's front is built on), and the gateway's ``http`` front with the fixture as
its one stdio mount, asked the way MCP clients ask (``Accept`` both JSON and SSE: ``gateway``)
and with ``Accept: application/json`` only (``gateway_json``, to show what SSE framing costs),
and where ``redis-server`` is installed the same gateway sharing its sessions through Redis
(``gateway_cluster``, ``[cluster] redis_url``: the cost of the shared state next to
``gateway``). The CPU time the server process used per call (opening and closing the sessions
included) is reported too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from bench.http_client import ACCEPT_BOTH, ACCEPT_JSON, load
from bench.procs import PYTHON, ServerProcess, children_cpu_seconds, cpu_seconds, fixture_mount
from bench.scenarios.common import MOUNT, Workspace, http_unavailable, interleaved
from bench.settings import BenchSettings
from bench.stats import latency_summary, median_of_runs
from vmcp.testing import RedisServer, running_redis

#: the target added where a redis-server can be started
CLUSTER = "gateway_cluster"
#: what each target is: its server, the tool called and the Accept header sent
Plan = dict[str, tuple[ServerProcess, str, str]]


def measure_load(server: ServerProcess, tool: str, accept: str, clients: int, calls: int,
                 modern: bool = False) -> dict[str, float]:
    """``calls`` spread over ``clients`` concurrent clients of ``server``: latency, calls/s,
    and the CPU used per call (sessions opened and closed included) by the server, by its
    backends (a gateway's children) and by the clients (this process), which share the
    machine's cores: what the server is left with bounds how far it can go."""
    assert server.url is not None
    per_client = max(1, calls // clients)
    before = (cpu_seconds(server.pid), children_cpu_seconds(server.pid), time.process_time())
    seconds, nanos = asyncio.run(load(server.url, tool, clients, per_client, accept,
                                      modern=modern))
    used = (cpu_seconds(server.pid) - before[0],
            children_cpu_seconds(server.pid) - before[1], time.process_time() - before[2])
    per_call = [round(cpu * 1e6 / len(nanos), 1) for cpu in used]
    return {**latency_summary(nanos), "calls_per_s": round(len(nanos) / seconds, 1),
            "cpu_us_per_call": per_call[0], "backend_cpu_us_per_call": per_call[1],
            "client_cpu_us_per_call": per_call[2]}


def measure_levels(settings: BenchSettings, plan: Plan, levels: Sequence[int],
                   modern: bool = False) -> dict[str, Any]:
    """Warm every target of ``plan`` up once, then measure each level with the targets
    interleaved; per level and target, the medians over the repetitions and every run."""

    def measure(name: str, clients: int, calls: int) -> dict[str, float]:
        return measure_load(*plan[name], clients, calls, modern=modern)

    for name in plan:
        measure(name, 8, max(64, settings.http_calls // 4))
    figures: dict[str, Any] = {}
    for clients in levels:
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in plan}
        for _, name in interleaved(settings.reps, tuple(plan)):
            runs[name].append(measure(name, clients, settings.http_calls))
        figures[str(clients)] = {
            name: {**median_of_runs(runs[name]), "runs": runs[name]} for name in plan}
    return figures


def run(settings: BenchSettings) -> dict[str, Any]:
    """Every level, every target interleaved; medians over the repetitions."""
    reason = http_unavailable()
    if reason is not None:
        return {"status": "skipped", "reason": reason}
    space = Workspace(settings, "http")
    with contextlib.ExitStack() as stack:
        direct = ServerProcess(space.command([PYTHON, "-m", "bench.http_fixture"]),
                               space.log("direct"))
        stack.callback(direct.close)
        gateway = ServerProcess(space.gateway("gateway", {MOUNT: fixture_mount()}, front="http"),
                                space.log("gateway"))
        stack.callback(gateway.close)
        plan: Plan = {
            "direct": (direct, "tool_0", ACCEPT_JSON),
            "gateway": (gateway, f"{MOUNT}__tool_0", ACCEPT_BOTH),
            "gateway_json": (gateway, f"{MOUNT}__tool_0", ACCEPT_JSON),
        }
        if RedisServer.installed():
            redis = stack.enter_context(running_redis())
            shared = ServerProcess(
                space.gateway("gateway_cluster", {MOUNT: fixture_mount()}, front="http",
                              sections={"cluster": {"redis_url": redis.url}}),
                space.log("gateway_cluster"))
            stack.callback(shared.close)
            plan[CLUSTER] = (shared, f"{MOUNT}__tool_0", ACCEPT_BOTH)
        levels = measure_levels(settings, plan, settings.http_levels)
    return {"status": "ok", "levels": levels}
