"""Cache benchmark: hit latency of each cache driver next to the uncached figure.

Run from the repository root: ``uv run python -m bench.cache_bench [--reads N] [--lists N]``.

One in-process gateway per configuration (no cache, then the ``memory``, ``disk`` and, when
``redis-server`` is installed, ``redis`` drivers), with 20 mounts of the bench fixture backend
listing 50 tools each (``python -m bench.fixture_backend --tools 50 --list-changed``) and one
mount of the demo ``notes`` server (an SDK server) whose ``note://*`` resources are cacheable.
Two figures per configuration, medians:

* **lists**: re-reading the tools lists of all 20 mounts (1,000 tools), what the gateway does
  when it starts, when a list changes elsewhere, or after ``list_ttl``: from the backends
  without a cache, from the cache (a hit per mount) with one. The fixture answers from
  pre-encoded bytes at once, so this compares a hit with the fastest possible backend: a hit
  costs about what decoding the list costs. What the cache saves on lists is a real backend's
  own work (an SDK server pages its lists), for a restarted gateway and for other instances;
* **read**: one ``resources/read`` of a note, sent to a front session in the gateway's own
  process and answered (no front transport in the way): the backend's answer without a
  cache, a hit with one.

Redis runs as a child ``redis-server`` on a free port, ended at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vmcp.testing import RedisServer, running_redis

ROOT = Path(__file__).resolve().parent.parent
MOUNTS = 20
TOOLS = 50


class Peer:
    """A front peer that resolves the future waiting for each response."""

    def __init__(self) -> None:
        self.waiting: dict[Any, asyncio.Future[dict[str, Any]]] = {}

    def send(self, message: dict[str, Any], related_to: Any = None) -> None:
        """A message for the client: the response to a request we sent, or a notification."""
        future = self.waiting.pop(message.get("id"), None)
        if future is not None:
            future.set_result(message)


def config(cache: dict[str, Any]) -> Any:
    """The gateway configuration: 20 list mounts and the notes mount, with ``cache``."""
    from vmcp.config import VmcpConfig

    fixture = {"command": sys.executable, "cwd": str(ROOT),
               "args": ["-m", "bench.fixture_backend", "--tools", str(TOOLS), "--list-changed"]}
    servers: dict[str, Any] = {f"list{n:02d}": dict(fixture) for n in range(MOUNTS)}
    servers["notes"] = {"command": sys.executable, "args": ["-m", "vmcp.demo.notes"],
                        "cache_resources": ["note://*"]}
    return VmcpConfig.model_validate({"cache": cache, "servers": servers,
                                      "gateway": {"startup_timeout": 60}})


async def measure(cache: dict[str, Any], reads: int, lists: int) -> dict[str, float]:
    """Start a gateway with ``cache``; return the median list re-read and read, in ms."""
    from vmcp.gateway.gateway import Gateway

    gateway = Gateway(config(cache))
    await gateway.start()
    peer = Peer()
    session = gateway.open_session(peer)
    ids = iter(range(1, 10**9))

    async def request(method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = next(ids)
        future = asyncio.get_running_loop().create_future()
        peer.waiting[request_id] = future
        session.handle({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        return await future

    try:
        await request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                     "clientInfo": {"name": "cache-bench", "version": "1"}})
        session.handle({"jsonrpc": "2.0", "method": "notifications/initialized"})
        answer = await request("tools/call", {"name": "notes__add_note",
                                              "arguments": {"name": "bench", "text": "x" * 2000}})
        assert "result" in answer, answer
        list_mounts = [m for m in gateway.mounts.values() if m.mount_id.startswith("list")]
        assert all(len(m.catalog["tools"]) == TOOLS for m in list_mounts)
        list_times = []
        for _ in range(lists):
            started = time.perf_counter()
            await asyncio.gather(*(m.refresh(("tools",), 30) for m in list_mounts))
            list_times.append(time.perf_counter() - started)
        read = {"uri": "note://bench"}
        for _ in range(reads // 10):  # warm up (and store the entry)
            await request("resources/read", read)
        read_times = []
        for _ in range(reads):
            started = time.perf_counter()
            answer = await request("resources/read", read)
            read_times.append(time.perf_counter() - started)
        assert "result" in answer, answer
        counters = gateway.cache.snapshot() if gateway.cache is not None else {}
    finally:
        await session.aclose()
        await gateway.stop()
    if cache.get("enabled", True):
        assert counters.get("hits", 0) >= reads, counters
    return {"lists_ms": statistics.median(list_times) * 1000,
            "read_ms": statistics.median(read_times) * 1000}


async def run(reads: int, lists: int) -> list[tuple[str, dict[str, float]]]:
    """Every configuration's figures, in order (``redis`` where a redis-server can start)."""
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="vmcp-cache-bench-"))
        configurations: list[tuple[str, dict[str, Any]]] = [
            ("no cache", {"enabled": False}),
            ("memory", {"backend": "memory"}),
            ("disk", {"backend": "disk", "directory": str(Path(folder) / "disk")}),
        ]
        if RedisServer.installed():
            redis = stack.enter_context(running_redis())
            configurations.append(("redis", {"backend": "redis", "url": redis.url,
                                             "namespace": "bench"}))
        return [(name, await measure(cache, reads, lists)) for name, cache in configurations]


def main() -> None:
    """Parse the options, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=2000, help="resources/read per driver")
    parser.add_argument("--lists", type=int, default=50, help="re-reads of the 20 lists")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    results = asyncio.run(run(args.reads, args.lists))
    base = dict(results)["no cache"]
    print(f"{'configuration':<14} {'20 x 50 tools lists (ms)':>26} {'resources/read (ms)':>21}")
    for name, figures in results:
        lists_ms, read_ms = figures["lists_ms"], figures["read_ms"]
        speedup = "" if name == "no cache" else (
            f"  ({base['lists_ms'] / lists_ms:.1f}x, {base['read_ms'] / read_ms:.1f}x)")
        print(f"{name:<14} {lists_ms:>26.3f} {read_ms:>21.3f}{speedup}")


if __name__ == "__main__":
    main()
