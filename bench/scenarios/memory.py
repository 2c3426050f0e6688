"""Gateway memory: resident set size per HTTP session (idle and active) and per mount.

* per session: a fresh gateway with the ``http`` front and one mount serves a few calls (so
  its code paths are loaded) and its RSS is read (the start); then ``memory_sessions`` MCP
  sessions are opened together and its RSS read again: the growth divided by their number
  is the cost of one session. Two kinds, each on a gateway of its own:

  - *idle*: ``initialize`` + ``notifications/initialized`` only, opened over 8 keep-alive
    connections that are closed afterwards (a session outlives its connections);
  - *active*: each session, on a connection of its own, makes ``memory_calls`` sequential
    ``tools/call`` (SSE replies) and then holds its standalone GET stream open, as an SDK
    client does: the connection, its HTTP request in flight and the open stream count.

  Then every session is ended with DELETE, every connection closed, and once the gateway
  holds no more file descriptors than at the start, and its RSS has then stopped falling
  (the gateway gives memory back a second after its last session left, see
  ``vmcp.memrelease``: the bench reads the RSS every ``RSS_POLL`` s until it has not fallen
  for ``RSS_QUIET`` s, at most ``RSS_SETTLE_TIMEOUT`` s), its RSS is read: the return, as a
  ratio to the start. The gateway runs its default settings except the session caps
  (``max_sessions``, ``max_sessions_per_principal``), raised above the count so that none
  is refused or reclaimed (every bench session is the same anonymous loopback principal,
  whose default cap is 2,500). The soft limit of open files is raised to the hard one.
* per mount: two stdio gateways, with one mount and with ``1 + memory_mounts`` mounts of 50
  tools each, after one ``tools/list``; the difference is divided by ``memory_mounts``.

Only the gateway process is counted, never its backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from typing import Any

from bench.http_client import active_sessions, end_sessions, idle_sessions, load
from bench.procs import ServerProcess, fixture_mount, open_fds, raise_fd_limit, rss_kib
from bench.scenarios.common import MOUNT, Workspace, http_unavailable
from bench.settings import BenchSettings
from bench.stats import BenchError
from bench.stdio_client import StdioTarget

MOUNT_TOOLS = 50
TOOL = f"{MOUNT}__tool_0"
#: seconds the gateway gets to close the connections the bench closed
SETTLE_TIMEOUT = 60.0
#: seconds between two reads of the RSS while it may still fall
RSS_POLL = 0.25
#: seconds without a fall after which the RSS is read as final: longer than the release
#: step's delay after the last session left (vmcp.memrelease.RELEASE_DELAY, 1 s) + margin
RSS_QUIET = 3.0
#: the longest the bench waits for the RSS to stop falling, in seconds
RSS_SETTLE_TIMEOUT = 20.0


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
    count = settings.memory_sessions
    # the bench holds one connection per active session, and so does the gateway
    raise_fd_limit(count + 256)
    kinds: dict[str, list[dict[str, Any]]] = {"idle": [], "active": []}
    for _ in range(settings.memory_reps):
        for kind, runs in kinds.items():
            runs.append(_sessions_run(settings, space, kind))
    summary: dict[str, Any] = {"status": "ok", "sessions": count,
                               "calls_per_active_session": settings.memory_calls}
    for kind, runs in kinds.items():
        summary[kind] = {
            "per_session_kib": statistics.median(r["per_session_kib"] for r in runs),
            "rss_start_kib": statistics.median(r["rss_start_kib"] for r in runs),
            "rss_loaded_kib": statistics.median(r["rss_loaded_kib"] for r in runs),
            "rss_after_kib": statistics.median(r["rss_after_kib"] for r in runs),
            "after_vs_start": statistics.median(r["after_vs_start"] for r in runs),
            "runs": runs,
        }
    return summary


def _sessions_run(settings: BenchSettings, space: Workspace, kind: str) -> dict[str, Any]:
    """One gateway: its RSS at the start, with the sessions open, after they are gone."""
    count = settings.memory_sessions
    caps = {"max_sessions": 2 * count, "max_sessions_per_principal": 2 * count}
    command = space.gateway(f"gateway-{kind}", {MOUNT: fixture_mount()}, front="http",
                            http=caps)
    gateway = ServerProcess(command, space.log(f"gateway-{kind}"))
    try:
        assert gateway.url is not None
        return asyncio.run(_measure(gateway, gateway.url, kind, count, settings.memory_calls))
    finally:
        gateway.close()


async def _measure(gateway: ServerProcess, url: str, kind: str, count: int,
                   calls: int) -> dict[str, Any]:
    await load(url, TOOL, 1, 10)
    start, start_fds = rss_kib(gateway.pid), open_fds(gateway.pid)
    opened = time.perf_counter()
    if kind == "idle":
        ids = await idle_sessions(url, count)
        clients = []
    else:
        clients = await active_sessions(url, TOOL, count, calls)
        ids = [client.session_id for client in clients if client.session_id is not None]
    seconds = time.perf_counter() - opened
    loaded, loaded_fds = rss_kib(gateway.pid), open_fds(gateway.pid)
    try:
        await end_sessions(url, ids)
    finally:
        await asyncio.gather(*(client.close() for client in clients))
    await _settled(gateway.pid, start_fds)
    after, quiet_after = await _rss_settled(gateway.pid)
    return {"sessions": len(ids), "open_seconds": round(seconds, 2), "rss_start_kib": start,
            "rss_loaded_kib": loaded, "rss_after_kib": after, "fds_start": start_fds,
            "fds_loaded": loaded_fds, "per_session_kib": round((loaded - start) / len(ids), 2),
            "after_vs_start": round(after / start, 3), "rss_settled_seconds": quiet_after}


async def _settled(pid: int, fds: int) -> None:
    """Wait until the gateway holds no more file descriptors than ``fds`` (the connections
    the bench closed are closed on its side too)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while open_fds(pid) > fds:
        if time.monotonic() > deadline:
            raise BenchError(f"the gateway still holds {open_fds(pid)} file descriptors "
                             f"{SETTLE_TIMEOUT:.0f} s after its connections were closed "
                             f"(it held {fds} at the start)")
        await asyncio.sleep(0.05)


async def _rss_settled(pid: int) -> tuple[int, float]:
    """The gateway's RSS once it has not fallen for ``RSS_QUIET`` seconds (at most
    ``RSS_SETTLE_TIMEOUT``), and the seconds waited until its last fall."""
    started = time.monotonic()
    lowest, fell_at = rss_kib(pid), started
    while time.monotonic() - fell_at < RSS_QUIET and (
            time.monotonic() - started < RSS_SETTLE_TIMEOUT):
        await asyncio.sleep(RSS_POLL)
        now = rss_kib(pid)
        if now < lowest:
            lowest, fell_at = now, time.monotonic()
    return rss_kib(pid), round(fell_at - started, 2)


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
