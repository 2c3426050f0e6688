"""``vmcp start --workers N``: stateless 2026-07-28 ``tools/call`` over HTTP for 1, 2 and 4
workers (``--quick``: 1 and 2), as calls per second against one worker.

The gateway's ``http`` front with the fixture as its one stdio mount (each worker spawns its
own), ``[gateway] workers = N``. The load comes from ``CLIENT_PROCESSES`` processes of their
own, each holding its share of the keep-alive connections, so that one client process's
event loop is not what limits the figure. Throughput is every call made over the longest of
the processes' call windows (a lower bound: their windows overlap but start apart by the
time a process takes to open its connections). The machine (CPUs, model, load) is recorded
with the figures, and so is the share of all its CPU time that went to work during each run
(``machine_busy``, from ``/proc/stat``): on a machine with fewer cores than workers plus
client processes, they share the cores, and what one worker leaves idle bounds what more
workers can add (1 / ``machine_busy`` of the one-worker run, at best).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.http_client import ACCEPT_BOTH, load
from bench.procs import ServerProcess, fixture_mount
from bench.scenarios.common import MOUNT, Workspace, http_unavailable, interleaved
from bench.settings import BenchSettings
from bench.stats import latency_summary, median_of_runs

#: processes the clients are spread over
CLIENT_PROCESSES = 2
#: seconds N gateway processes (and a backend each) may take to start on a busy machine
START_TIMEOUT = 180.0
#: what a supervisor prints once every worker serves
_ALL_SERVING = re.compile(r"\d+ workers (serving) \S+ on (\S+)")


def _client_share(url: str, tool: str, clients: int, calls_per_client: int
                  ) -> tuple[float, list[int]]:
    """One client process's share of the load: (seconds, per-call nanoseconds)."""
    return asyncio.run(load(url, tool, clients, calls_per_client, ACCEPT_BOTH, modern=True))


def cpu_times() -> tuple[int, int] | None:
    """The machine's (busy, total) CPU time so far, in clock ticks of all its CPUs (None
    where ``/proc/stat`` is not readable)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guests are in user)
    return total - fields[3] - fields[4], total


def busy_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of the machine's CPU time that went to work between two :func:`cpu_times`."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]), 3)


def _measure(pool: ProcessPoolExecutor, url: str, clients: int, calls: int
             ) -> dict[str, float]:
    shares = [clients // CLIENT_PROCESSES + (1 if i < clients % CLIENT_PROCESSES else 0)
              for i in range(CLIENT_PROCESSES)]
    per_client = max(1, calls // clients)
    before = cpu_times()
    futures = [pool.submit(_client_share, url, f"{MOUNT}__tool_0", share, per_client)
               for share in shares if share]
    results = [future.result() for future in futures]
    busy = busy_share(before, cpu_times())
    nanos = [n for _, latencies in results for n in latencies]
    seconds = max(elapsed for elapsed, _ in results)
    return {**latency_summary(nanos), "calls_per_s": round(len(nanos) / seconds, 1),
            **({"machine_busy": busy} if busy is not None else {})}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu_model": model,
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "client_processes": CLIENT_PROCESSES}


def run(settings: BenchSettings) -> dict[str, Any]:
    """Every level, every worker count interleaved; medians over the repetitions."""
    reason = http_unavailable()
    if reason is not None:
        return {"status": "skipped", "reason": reason}
    space = Workspace(settings, "workers")
    names = [str(n) for n in settings.worker_counts]
    with contextlib.ExitStack() as stack:
        gateways: dict[str, ServerProcess] = {}
        for count in settings.worker_counts:
            command = space.gateway(f"workers-{count}", {MOUNT: fixture_mount()},
                                    gateway={"workers": count}, front="http")
            # A supervisor says so once all its workers serve (each also says it serves).
            extra = {"announce": _ALL_SERVING} if count > 1 else {}
            gateway = ServerProcess(command, space.log(f"workers-{count}"), START_TIMEOUT,
                                    **extra)
            stack.callback(gateway.close)
            gateways[str(count)] = gateway
        pool = stack.enter_context(ProcessPoolExecutor(
            CLIENT_PROCESSES, mp_context=multiprocessing.get_context("spawn")))

        def measure(name: str, clients: int, calls: int) -> dict[str, float]:
            url = gateways[name].url
            assert url is not None
            return _measure(pool, url, clients, calls)

        for name in names:  # warm up every gateway (and the client processes) once
            measure(name, 8, max(64, settings.http_calls // 4))
        levels: dict[str, Any] = {}
        for clients in settings.worker_levels:
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
            for _, name in interleaved(settings.reps, names):
                runs[name].append(measure(name, clients, settings.http_calls))
            level = {name: {**median_of_runs(runs[name]), "runs": runs[name]}
                     for name in names}
            one = level[names[0]]["calls_per_s"]
            for name in names:
                level[name]["vs_one_worker"] = round(level[name]["calls_per_s"] / one, 3)
            levels[str(clients)] = level
    return {"status": "ok", "levels": levels, "machine": machine()}
