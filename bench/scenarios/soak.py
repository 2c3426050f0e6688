"""Soak: a steady HTTP load for minutes, the gateway's resources sampled as it runs.

The load (:mod:`bench.soak_load`): ``soak_sessions`` sessions kept alive, ``soak_rate`` new
ones a second (so each lives ``soak_sessions / soak_rate`` seconds), each calling
``tools/call`` every ``soak_call_interval`` seconds; half end with DELETE, half are abandoned
and left to the gateway's idle expiry, which is shortened to ``soak_idle_timeout`` seconds
(``session_idle_timeout``; the default, 600 s, would reap nothing within a short run) with SSE
keep-alives every ``soak_keepalive`` seconds (the front's default: a GET stream whose client
vanished is noticed at its next keep-alive write). Everything else is the gateway's default,
plus ``[monitoring] metrics_port`` for its task count.

Every ``soak_sample`` seconds: the gateway's RSS and open file descriptors (``/proc``), the
tasks alive on its event loop and its open sessions (``vmcp_event_loop_tasks`` and
``vmcp_sessions`` from ``/metrics``), and the sessions alive on the client side.

Verdict "flat", per resource: after the warm-up (a session's lifetime plus the idle timeout
plus a keep-alive interval, so that abandoned sessions are being reaped as fast as they come;
at most half the run), the median of the last third of the samples is at most 1.1x the
median of the first third.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

from bench.procs import ServerProcess, fixture_mount, open_fds, rss_kib
from bench.scenarios.common import MOUNT, Workspace, http_unavailable
from bench.settings import BenchSettings
from bench.soak_load import SoakCounts, SoakLoad, run_load
from bench.stats import BenchError

#: the resources whose flatness is judged
WATCHED = ("rss_kib", "fds", "tasks")
#: the last third's median may be this much of the first third's
FLAT_LIMIT = 1.1
_METRICS = re.compile(r"vmcp: metrics on (\S+)")


def run(settings: BenchSettings) -> dict[str, Any]:
    """One gateway under the soak load for ``soak_minutes``."""
    reason = http_unavailable()
    if reason is not None:
        return {"status": "skipped", "reason": reason}
    space = Workspace(settings, "soak")
    front = {"session_idle_timeout": settings.soak_idle_timeout,
             "keepalive_interval": settings.soak_keepalive}
    command = space.gateway("gateway", {MOUNT: fixture_mount()}, front="http", http=front,
                            sections={"monitoring": {"metrics_port": 0}})
    gateway = ServerProcess(command, space.log("gateway"))
    try:
        assert gateway.url is not None
        load = SoakLoad(gateway.url, f"{MOUNT}__tool_0", settings.soak_sessions,
                        settings.soak_rate, settings.soak_call_interval)
        seconds = settings.soak_minutes * 60
        samples, counts = asyncio.run(_soak(gateway, load, seconds, settings.soak_sample))
    finally:
        gateway.close()
    warmup = min(load.lifetime + settings.soak_idle_timeout + settings.soak_keepalive,
                 seconds / 2)
    return {
        "status": "ok",
        "minutes": settings.soak_minutes,
        "sessions_kept": settings.soak_sessions,
        "new_sessions_per_s": settings.soak_rate,
        "session_lifetime_s": load.lifetime,
        "call_interval_s": settings.soak_call_interval,
        "idle_timeout_s": settings.soak_idle_timeout,
        "keepalive_s": settings.soak_keepalive,
        "sample_s": settings.soak_sample,
        "warmup_s": round(warmup, 1),
        "opened": counts.opened,
        "closed": counts.closed,
        "abandoned": counts.abandoned,
        "calls": counts.calls,
        "calls_per_s": round(counts.calls / seconds, 1),
        "failures": counts.failures,
        "flat": {key: flatness(samples, warmup, key) for key in WATCHED},
        "samples": samples,
    }


def flatness(samples: list[dict[str, Any]], warmup: float, key: str) -> dict[str, Any]:
    """The medians of ``key`` over the first and the last third of the samples taken after
    ``warmup`` seconds, and their ratio (None when fewer than three samples remain)."""
    steady = [sample[key] for sample in samples if sample["t_s"] >= warmup]
    third = len(steady) // 3
    if third < 1:
        return {"first": None, "last": None, "ratio": None}
    first, last = statistics.median(steady[:third]), statistics.median(steady[-third:])
    return {"first": first, "last": last,
            "ratio": round(last / first, 3) if first else None}


async def _soak(gateway: ServerProcess, load: SoakLoad, seconds: float,
                every: float) -> tuple[list[dict[str, Any]], SoakCounts]:
    """Run the load and sample the gateway every ``every`` seconds meanwhile."""
    metrics = gateway.announced(_METRICS)
    counts = SoakCounts()
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    loading = asyncio.get_running_loop().create_task(run_load(load, seconds, counts))
    try:
        taken = 0
        while not loading.done():
            taken += 1
            await asyncio.wait({loading}, timeout=max(0.0, started + taken * every
                                                      - time.monotonic()))
            if not loading.done() and time.monotonic() - started < seconds:
                samples.append(await _sample(gateway.pid, metrics, counts, started))
        await loading
    finally:
        loading.cancel()
    if counts.opened == 0:
        raise BenchError(f"no session could be opened: {counts.failures}")
    return samples, counts


async def _sample(pid: int, metrics: str, counts: SoakCounts, started: float
                  ) -> dict[str, Any]:
    at = round(time.monotonic() - started, 2)
    # read before the scrape, whose connection is not the load's
    rss, fds = rss_kib(pid), open_fds(pid)
    scraped = await scrape(metrics)
    return {"t_s": at, "rss_kib": rss, "fds": fds,
            "tasks": int(scraped["vmcp_event_loop_tasks"]),
            "sessions": int(scraped["vmcp_sessions"]), "kept": counts.alive,
            "calls": counts.calls}


async def scrape(url: str, timeout: float = 10.0) -> dict[str, float]:
    """The samples of a Prometheus text exposition at ``url`` (name with labels -> value)."""
    parts = urlsplit(url)
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            writer.write(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                         "Connection: close\r\n\r\n".encode())
            answer = await reader.read()
        finally:
            writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise BenchError(f"GET {url}: {head[:100]!r}")
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values
