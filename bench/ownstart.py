"""The gateway's own start-up: from its spawn to the spawn of its first backend.

Each mount runs through ``sh``, which appends the wall-clock time (ns) it started at to a
stamp file and then becomes the fixture backend; the earliest stamp minus the gateway's spawn
time is what the gateway did before it could start any backend (interpreter start, imports,
configuration, plugins). The first start in a new home is cold; from the third on, starts
of the same configuration are warm: the front snapshot the earlier ones kept lets the head
start spawn the backends before the gateway is imported (:mod:`vmcp.headstart`). One more
run under ``python -X importtime`` says where the import part of a cold start went.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.procs import Command
from bench.stats import BenchError
from bench.stdio_client import StdioTarget

#: top-level imports listed in the report
TOP_IMPORTS = 6


def stamped_mount(argv: list[str], stamps: Path) -> dict[str, Any]:
    """A ``[servers.<id>]`` table that stamps its start into ``stamps``, then runs ``argv``."""
    script = f"date +%s%N >> {shlex.quote(str(stamps))}; exec {shlex.join(argv)}"
    return {"command": "sh", "args": ["-c", script]}


def first_spawn_ms(command: Command, stamps: Path, cwd: Path, log: Path, tool: str) -> float:
    """Milliseconds from spawning the gateway to the first stamp of one of its backends.

    The start is taken to its end (the handshake and a call of ``tool`` on the slowest
    mount), as a client's would be: what a start keeps for the next (the warm catalog, the
    front snapshot and its record of the backends' spawns) is kept as it would be.
    """
    stamps.unlink(missing_ok=True)
    started = time.time()
    target = StdioTarget(command, cwd, log)
    try:
        target.initialize()
        target.request("tools/call", {"name": tool, "arguments": {}})
    finally:
        target.close()
    if not (stamps.exists() and stamps.read_text().strip()):
        raise BenchError(f"no backend of the gateway started (see {log})")
    first = min(int(line) for line in stamps.read_text().split()) / 1e9
    return (first - started) * 1000


def import_profile(command: Command, stamps: Path, cwd: Path, log: Path) -> dict[str, Any]:
    """One start under ``-X importtime``: total import time and the heaviest top-level
    imports, up to the first backend's spawn."""
    argv = command.argv
    if len(argv) < 2 or argv[1] != "-m":
        return {"status": "skipped", "reason": "the gateway launcher is not 'python -m ...'"}
    traced = Command([argv[0], "-X", "importtime", *argv[1:]], command.env)
    stamps.unlink(missing_ok=True)
    errors = log.with_suffix(".importtime")
    with errors.open("wb") as err:
        process = subprocess.Popen(traced.argv, stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=err, env=traced.env,
                                   cwd=cwd)
        try:
            deadline = time.monotonic() + 60.0
            while not (stamps.exists() and stamps.read_text().strip()):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"no backend of the gateway started (see {errors})")
                time.sleep(0.001)
        finally:
            _stop(process)
    return summarize(errors.read_text(errors="replace"))


def summarize(text: str) -> dict[str, Any]:
    """Total self time of every import, the module count, and the top-level imports with
    the largest cumulative times (``-X importtime`` output)."""
    total_us = 0
    modules = 0
    top: list[tuple[int, str]] = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        own, cumulative, name = line.split(":", 1)[1].split("|")
        total_us += int(own)
        modules += 1
        if not name[1:].startswith(" "):  # one space: imported at the top level
            top.append((int(cumulative), name.strip()))
    top.sort(reverse=True)
    return {"status": "ok", "imports_ms": round(total_us / 1000, 1), "modules": modules,
            "top": [{"module": name, "ms": round(us / 1000, 1)}
                    for us, name in top[:TOP_IMPORTS]]}


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the gateway as its client would: close its stdin, then wait (killing if stuck)."""
    try:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
