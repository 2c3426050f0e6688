"""Gateway memory: resident set size per idle HTTP session and per mount.

* per session: a fresh gateway with the ``http`` front and one mount serves one call (so its
  code paths are loaded), then ``idle_sessions`` MCP sessions are opened and left idle; the
  growth of the gateway process's RSS is divided by their number.
* per mount: two stdio gateways, with one mount and with ``1 + memory_mounts`` mounts of 50
  tools each, after one ``tools/list``; the difference is divided by ``memory_mounts``.

Only the gateway process is counted, never its backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from typing import Any

from bench.http_client import idle_sessions, load
from bench.procs import ServerProcess, fixture_mount, rss_kib
from bench.scenarios.common import MOUNT, Workspace, http_unavailable
from bench.settings import BenchSettings
from bench.stdio_client import StdioTarget

MOUNT_TOOLS = 50


def run(settings: BenchSettings) -> dict[str, Any]:
    """Both figures; the per-session one is skipped when the HTTP front is not available."""
    space = Workspace(settings, "memory")
    result: dict[str, Any] = {"status": "ok", "per_mount": _per_mount(settings, space)}
    reason = http_unavailable()
    if reason is None:
        result["per_session"] = _per_session(settings, space)
    else:
        result["per_session"] = {"status": "skipped", "reason": reason}
    return result


def _per_session(settings: BenchSettings, space: Workspace) -> dict[str, Any]:
    runs = []
    for _ in range(settings.memory_reps):
        command = space.gateway("gateway", {MOUNT: fixture_mount()}, front="http")
        gateway = ServerProcess(command, space.log("gateway"))
        try:
            assert gateway.url is not None
            asyncio.run(load(gateway.url, f"{MOUNT}__tool_0", 1, 10))
            before = rss_kib(gateway.pid)
            opened = asyncio.run(idle_sessions(gateway.url, settings.idle_sessions))
            after = rss_kib(gateway.pid)
        finally:
            gateway.close()
        runs.append({"sessions": opened, "rss_before_kib": before, "rss_after_kib": after,
                     "per_session_kib": round((after - before) / opened, 2)})
    return {
        "status": "ok",
        "sessions": settings.idle_sessions,
        "per_session_kib": statistics.median(r["per_session_kib"] for r in runs),
        "rss_after_kib": statistics.median(r["rss_after_kib"] for r in runs),
        "runs": runs,
    }


def _per_mount(settings: BenchSettings, space: Workspace) -> dict[str, Any]:
    added = settings.memory_mounts
    tables = {
        "one": {"m00": fixture_mount(MOUNT_TOOLS)},
        "many": {f"m{n:02d}": fixture_mount(MOUNT_TOOLS) for n in range(1 + added)},
    }
    runs = []
    for _ in range(settings.memory_reps):
        rss = {}
        for label, servers in tables.items():
            with contextlib.ExitStack() as stack:
                target = StdioTarget(space.gateway(label, servers), space.root, space.log(label))
                stack.callback(target.close)
                target.initialize()
                target.timed_lists(1, len(servers) * MOUNT_TOOLS)
                rss[label] = rss_kib(target.pid)
        runs.append({"rss_one_kib": rss["one"], "rss_many_kib": rss["many"],
                     "per_mount_kib": round((rss["many"] - rss["one"]) / added, 1)})
    return {
        "mounts_added": added,
        "tools_per_mount": MOUNT_TOOLS,
        "per_mount_kib": statistics.median(r["per_mount_kib"] for r in runs),
        "rss_one_mount_kib": statistics.median(r["rss_one_kib"] for r in runs),
        "runs": runs,
    }
