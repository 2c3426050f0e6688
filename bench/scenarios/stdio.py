"""stdio front -> stdio backend: sequential latency and pipelined throughput.

Four targets answer the same ``tools/call`` from the same fixture backend: the backend itself
(``direct``), the parse-and-forward relay in front of it with the standard library's JSON on
asyncio (``relay``) and with orjson on uvloop (``relay_fast``, the floor of issue 22), and the
gateway with it as its one mount (``gateway``), and the same with a persona, the memory cache
and metrics switched on (``gateway_full``, the cost of what a deployment adds). Besides
wall-clock figures, the CPU time each target process itself used per call (the backend
excluded) is reported.
"""

from __future__ import annotations

import contextlib
from typing import Any

from bench.procs import Command, cpu_seconds, fixture_argv, fixture_mount, relay_argv
from bench.scenarios.common import MOUNT, Workspace, interleaved
from bench.settings import BenchSettings
from bench.stats import latency_summary, median_of_runs
from bench.stdio_client import StdioTarget, call_lines, check_answers

TARGETS = ("direct", "relay", "relay_fast", "gateway", "gateway_full")


def run(settings: BenchSettings) -> dict[str, Any]:
    """Measure the three targets, interleaved; medians over the repetitions."""
    space = Workspace(settings, "stdio")
    commands = {
        "direct": space.command(fixture_argv()),
        "relay": space.command(relay_argv(fixture_argv())),
        "relay_fast": space.command(relay_argv(fixture_argv(), fast=True)),
        "gateway": space.gateway("gateway", {MOUNT: fixture_mount()}),
        # what a deployment switches on besides the defaults: a persona's policy on every
        # call, the memory cache asked of every call, and Prometheus metrics
        "gateway_full": space.gateway(
            "full", {MOUNT: fixture_mount()}, {"default_persona": "bench"},
            sections={"cache": {"backend": "memory"}, "monitoring": {"metrics_port": 0}},
            personas={"bench": {"servers": {MOUNT: {}}}}),
    }
    tools = {"direct": "tool_0", "relay": "tool_0", "relay_fast": "tool_0",
             "gateway": f"{MOUNT}__tool_0", "gateway_full": f"{MOUNT}__tool_0"}
    result: dict[str, Any] = {"status": "ok", "targets": measure(settings, space, commands,
                                                                 tools)}
    t = result["targets"]
    result["added_p50_us"] = {
        "relay": round(t["relay"]["p50_us"] - t["direct"]["p50_us"], 1),
        "relay_fast": round(t["relay_fast"]["p50_us"] - t["direct"]["p50_us"], 1),
        "gateway": round(t["gateway"]["p50_us"] - t["direct"]["p50_us"], 1),
        "gateway_full": round(t["gateway_full"]["p50_us"] - t["direct"]["p50_us"], 1),
    }
    return result


def measure(settings: BenchSettings, space: Workspace, commands: dict[str, Command],
            tools: dict[str, str]) -> dict[str, Any]:
    """Sequential latency and pipelined throughput of each stdio target calling its tool,
    interleaved; medians over the repetitions, and CPU time per call of each target."""
    names = tuple(commands)
    with contextlib.ExitStack() as stack:
        targets: dict[str, StdioTarget] = {}
        for name in names:
            target = StdioTarget(commands[name], space.root, space.log(name))
            stack.callback(target.close)
            target.initialize()
            targets[name] = target
        next_id = dict.fromkeys(names, 1)

        def lines(name: str, count: int) -> tuple[list[bytes], range]:
            ids = range(next_id[name], next_id[name] + count)
            next_id[name] += count
            return call_lines(tools[name], ids), ids

        for name, target in targets.items():  # warm up every path once
            batch, ids = lines(name, settings.warmup)
            check_answers(target.sequential(batch)[1], ids)
            batch, ids = lines(name, settings.warmup)
            check_answers(target.pipelined(batch)[1], ids)

        latency: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        throughput: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        #: CPU seconds the target process used, and calls made: (sequential, pipelined)
        cpu = {name: [0.0, 0.0] for name in names}
        for _, name in interleaved(settings.reps, names):
            batch, ids = lines(name, settings.latency_calls)
            before = cpu_seconds(targets[name].pid)
            nanos, answers = targets[name].sequential(batch)
            cpu[name][0] += cpu_seconds(targets[name].pid) - before
            check_answers(answers, ids)
            latency[name].append(latency_summary(nanos))
        for _, name in interleaved(settings.reps, names):
            batch, ids = lines(name, settings.pipeline_calls)
            before = cpu_seconds(targets[name].pid)
            seconds, answers = targets[name].pipelined(batch)
            cpu[name][1] += cpu_seconds(targets[name].pid) - before
            check_answers(answers, ids)
            throughput[name].append({"calls_per_s": round(len(batch) / seconds, 1)})

    return {name: {
        **median_of_runs(latency[name]),
        **median_of_runs(throughput[name]),
        # from CPU-time ticks summed over all repetitions: coarse, but blind to other load
        "cpu_us_per_call": round(
            cpu[name][0] * 1e6 / (settings.reps * settings.latency_calls), 1),
        "cpu_us_per_pipelined_call": round(
            cpu[name][1] * 1e6 / (settings.reps * settings.pipeline_calls), 1),
        "runs": {"latency": latency[name], "throughput": throughput[name]},
    } for name in names}
