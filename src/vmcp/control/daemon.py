"""``vmcp start -d`` and ``vmcp stop``: a gateway in the background, and ending it.

The detached gateway is ``vmcp start`` run again in a new session, with its standard streams
away from the terminal (stderr appended to ``logs/vmcp.out``, its log in ``logs/vmcp.log``).
It reports on a pipe once its mounts are up and every front listens, so ``start -d`` returns
with the real addresses, or with the reason it could not start.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vmcp.control.client import ControlClient, NotRunning
from vmcp.control.instance import AlreadyRunning, pid_alive, probe
from vmcp.control.paths import RunPaths
from vmcp.control.protocol import ControlError

#: seconds ``vmcp stop`` waits beyond the grace period for backends to be shut down
STOP_MARGIN = 30.0
_POLL = 0.05
_TAIL_LINES = 20


class DaemonError(Exception):
    """The detached gateway could not be started."""


def detach(
    paths: RunPaths, config_path: str | None, fronts: Sequence[str], log_level: str | None,
    wait: float, start_args: Sequence[str] = (),
) -> dict[str, Any]:
    """Start the gateway in the background and wait (up to ``wait`` s) until it is ready.

    ``start_args`` are more ``vmcp start`` options for it (e.g. ``--port 8000``).

    :returns: what it reported: pid, fronts (name -> address), metrics URL, control socket.
    :raises AlreadyRunning: a gateway already runs with this home.
    :raises DaemonError: it exited or did not get ready in time (it is then stopped).
    """
    found = probe(paths)
    if found.running:
        raise AlreadyRunning(found.pid)
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    read_end, write_end = os.pipe()
    command = [sys.executable, "-m", "vmcp"]
    if config_path:
        command += ["--config", str(Path(config_path).resolve())]
    command += ["start", "--ready-fd", str(write_end)]
    for name in fronts:
        command += ["-t", name]
    if log_level:
        command += ["--log-level", log_level]
    command += start_args
    try:
        with paths.output_file.open("ab") as output:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                pass_fds=(write_end,), start_new_session=True)
    finally:
        os.close(write_end)
    try:
        line = _read_line(read_end, wait)
    finally:
        os.close(read_end)
    if line:
        return json.loads(line)  # type: ignore[no-any-return]
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        reason = f"it did not get ready within {wait:g}s"
    else:
        reason = f"it exited with status {process.returncode}"
    raise DaemonError(f"the gateway did not start: {reason}\n{_tail(paths)}")


def _read_line(fd: int, wait: float) -> bytes:
    """Everything the child writes until it closes the pipe (or the time is up)."""
    deadline = time.monotonic() + wait
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return b""
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0] if b"\n" in data else b""


def _tail(paths: RunPaths) -> str:
    lines: list[str] = []
    for path in (paths.output_file, paths.log_file):
        if path.exists():
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()
            lines += [f"  {path.name}: {line}" for line in text[-_TAIL_LINES:]]
    return "\n".join(lines)


def _live_status(paths: RunPaths) -> dict[str, Any]:
    """The running gateway's status, or {} when its control endpoint does not answer."""
    try:
        status = ControlClient(paths, timeout=5.0).call("status")
    except (NotRunning, ControlError, OSError):
        return {}
    return status if isinstance(status, dict) else {}


def stop(paths: RunPaths, default_grace: float) -> int | None:
    """Stop the running gateway: SIGTERM, then wait for it (and its backends) to be gone.

    Calls in flight get the gateway's ``shutdown_grace`` to finish; past that plus a margin
    the gateway is killed, and any backend it left behind with it.

    :returns: the pid stopped, or None when no gateway was running.
    """
    found = probe(paths)
    if not found.running or found.pid is None:
        return None
    pid = found.pid
    status = _live_status(paths)
    backends = [replica["pid"] for mount in status.get("mounts", [])
                for replica in mount.get("replicas", []) if replica.get("pid")]
    grace = float(status.get("shutdown_grace", default_grace))
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace + STOP_MARGIN
    # Its lock goes when it has stopped its backends; the process ends just after.
    while (probe(paths).running or pid_alive(pid)) and time.monotonic() < deadline:
        time.sleep(_POLL)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid) and time.monotonic() < deadline + 5:
            time.sleep(_POLL)
    for backend in backends:
        if pid_alive(backend):
            _kill_left_over(backend)
    return pid


def _kill_left_over(pid: int) -> None:
    """Kill a backend left behind, with its process group (backends run in their own)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            return
