"""Instructions per call, counted by callgrind: the one figure a busy machine cannot move.

On a shared two-core machine the same build's calls per second vary by 15% from one run to
the next, which hides any change smaller than that. Here each target process runs under
valgrind's callgrind with counting off; counting is switched on (``callgrind_control``) for
the measured calls only, and their instructions are divided by the calls. The count does not
depend on the machine's load, so a change of 1% shows. It does not count the kernel's work
(system calls), cache misses or waits, so it complements the timed scenarios, never replaces
them: a target is never judged on it.

Targets: stdio sequential ``tools/call`` through the orjson + uvloop relay floor
(``relay_fast``) and through the gateway; over HTTP at 32 clients, the in-process fixture
(``direct``) and the gateway's ``http`` front, in both eras.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.http_client import ACCEPT_BOTH, ACCEPT_JSON, load
from bench.procs import PYTHON, Command, ServerProcess, fixture_argv, fixture_mount, relay_argv
from bench.scenarios.common import MOUNT, Workspace, http_unavailable
from bench.settings import BenchSettings
from bench.stats import BenchError
from bench.stdio_client import StdioTarget, call_lines, check_answers

#: concurrent HTTP clients of the HTTP targets
HTTP_CLIENTS = 32
#: seconds a process under valgrind may take to start (it runs about 50 times slower)
START_TIMEOUT = 300.0


def unavailable() -> str | None:
    """Why instructions cannot be counted here, or None."""
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not installed" if missing else None


def run(settings: BenchSettings) -> dict[str, Any]:
    """Every target, one after the other (the counts need no interleaving)."""
    reason = unavailable()
    if reason is not None:
        return {"status": "skipped", "reason": reason}
    space = Workspace(settings, "instructions")
    stdio = {
        "relay_fast": (space.command(relay_argv(fixture_argv(), fast=True)), "tool_0"),
        "gateway": (space.gateway("gateway", {MOUNT: fixture_mount()}), f"{MOUNT}__tool_0"),
    }
    result: dict[str, Any] = {"status": "ok", "stdio": {}, "calls": settings.counted_calls}
    for name, (command, tool) in stdio.items():
        result["stdio"][name] = _stdio(space, name, command, tool, settings.counted_calls)
    result["stdio_ratio"] = _ratio(result["stdio"]["gateway"], result["stdio"]["relay_fast"])
    if http_unavailable() is None:
        for era, modern in (("http", False), ("modern", True)):
            figures = {
                "direct": _http(space, f"{era}-direct",
                                space.command([PYTHON, "-m", "bench.http_fixture"]),
                                "tool_0", ACCEPT_JSON, settings.counted_calls, modern),
                "gateway": _http(space, f"{era}-gateway",
                                 space.gateway(era, {MOUNT: fixture_mount()}, front="http"),
                                 f"{MOUNT}__tool_0", ACCEPT_BOTH, settings.counted_calls,
                                 modern),
            }
            result[era] = {**figures, "ratio": _ratio(figures["gateway"], figures["direct"])}
    return result


def _ratio(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, 3)


class _Counter:
    """callgrind's counting in one process started under ``valgrind`` by :meth:`command`."""

    def __init__(self, space: Workspace, label: str) -> None:
        self._out = space.root / f"callgrind.{label}"

    def command(self, command: Command) -> Command:
        """``command`` run under callgrind, counting nothing until :meth:`start`."""
        return Command(["valgrind", "--tool=callgrind", "--quiet", "--instr-atstart=no",
                        f"--callgrind-out-file={self._out}.%p", *command.argv], command.env)

    @staticmethod
    def _control(pid: int, *args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(pid)], check=True,
                       stdout=subprocess.DEVNULL, timeout=60)

    def start(self, pid: int) -> None:
        """Count from now on."""
        self._control(pid, "--instr=on")

    def stop(self, pid: int) -> int:
        """The instructions counted since :meth:`start` (counting stops)."""
        self._control(pid, "--dump")
        self._control(pid, "--instr=off")
        counted = 0
        for dump in Path(self._out.parent).glob(f"{self._out.name}.{pid}.*"):
            for line in dump.read_text().splitlines():
                if line.startswith("summary:"):
                    counted += int(line.split()[1])
        if not counted:
            raise BenchError(f"callgrind wrote no count for process {pid}")
        return counted


def _stdio(space: Workspace, name: str, command: Command, tool: str, calls: int) -> int:
    """Instructions per sequential call of one stdio target."""
    counter = _Counter(space, name)
    target = StdioTarget(counter.command(command), space.root, space.log(name),
                         timeout=START_TIMEOUT)
    try:
        target.initialize()
        ids = range(1, 101)
        check_answers(target.sequential(call_lines(tool, ids))[1], ids)  # warm up
        ids = range(1000, 1000 + calls)
        counter.start(target.pid)
        check_answers(target.sequential(call_lines(tool, ids))[1], ids)
        return round(counter.stop(target.pid) / calls)
    finally:
        target.close()


def _http(space: Workspace, name: str, command: Command, tool: str, accept: str, calls: int,
          modern: bool) -> int:
    """Instructions per call of one HTTP target, at :data:`HTTP_CLIENTS` clients."""
    counter = _Counter(space, name)
    with contextlib.ExitStack() as stack:
        server = ServerProcess(counter.command(command), space.log(name),
                               timeout=START_TIMEOUT)
        stack.callback(server.close)
        assert server.url is not None
        asyncio.run(load(server.url, tool, 4, 25, accept, modern=modern))  # warm up
        per_client = max(1, calls // HTTP_CLIENTS)
        counter.start(server.pid)
        _, nanos = asyncio.run(load(server.url, tool, HTTP_CLIENTS, per_client, accept,
                                    modern=modern))
        return round(counter.stop(server.pid) / len(nanos))
