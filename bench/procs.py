"""Processes under test: configurations, command lines, servers that announce a URL, memory.

Every child gets ``PYTHONPATH`` pointing at the repository (so ``-m bench.…`` works from the
gateway's backends too) and a private ``VMCP_HOME``, so nothing of the user's own vmcp
configuration leaks into a measurement.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stats import BenchError

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
_ANNOUNCE = re.compile(r"serving (\S+) on (\S+)")


@dataclass(frozen=True)
class Command:
    """A child's command line and environment."""

    argv: list[str]
    env: dict[str, str]


def bench_env(home: Path) -> dict[str, str]:
    """The environment of every child: this one, plus the repository on the path (and
    bytecode caching on)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["VMCP_HOME"] = str(home)
    env.pop("VMCP_CONFIG", None)
    # Start-up is measured as an installed gateway starts: with its modules' bytecode cached
    # (an installer compiles it), not compiled again from source on every start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def fixture_argv(tools: int = 1, list_changed: bool = True, delay: float = 0.0) -> list[str]:
    """The command line of a fixture backend."""
    argv = [PYTHON, "-m", "bench.fixture_backend", "--tools", str(tools)]
    if list_changed:
        argv.append("--list-changed")
    if delay:
        argv += ["--delay", f"{delay:g}"]
    return argv


def fixture_mount(tools: int = 1, list_changed: bool = True, delay: float = 0.0) -> dict[str, Any]:
    """A ``[servers.<id>]`` table running a fixture backend."""
    argv = fixture_argv(tools, list_changed, delay)
    return {"command": argv[0], "args": argv[1:]}


def relay_argv(backend: Sequence[str], fast: bool = False) -> list[str]:
    """The parse-and-forward relay in front of ``backend`` (``fast``: orjson on uvloop)."""
    return [PYTHON, "-m", "bench.relay", *(["--fast"] if fast else []), "--", *backend]


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)  # JSON strings, numbers and booleans are TOML values


def write_config(
    path: Path,
    servers: Mapping[str, Mapping[str, Any]],
    gateway: Mapping[str, Any] | None = None,
    transports: Mapping[str, Mapping[str, Any]] | None = None,
    sections: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """A ``vmcp.toml`` with these mounts (an empty ``[servers]`` when there are none) and
    any other top-level ``sections`` (``monitoring``, ``cache``, ...)."""
    lines = ["[logging]", 'level = "warning"', ""]
    if gateway:
        lines += ["[gateway]", *(f"{k} = {_toml(v)}" for k, v in gateway.items()), ""]
    for name, settings in (sections or {}).items():
        lines += [f"[{name}]", *(f"{k} = {_toml(v)}" for k, v in settings.items()), ""]
    for name, settings in (transports or {}).items():
        lines += [f"[transports.{name}]", *(f"{k} = {_toml(v)}" for k, v in settings.items()), ""]
    if not servers:
        lines += ["[servers]", ""]
    for mount_id, settings in servers.items():
        lines += [f"[servers.{mount_id}]", *(f"{k} = {_toml(v)}" for k, v in settings.items()), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def gateway_argv(config: Path, front: str = "stdio", launcher: Sequence[str] = ()) -> list[str]:
    """``vmcp start`` on ``config`` serving one front (``launcher`` replaces ``-m vmcp``)."""
    head = list(launcher) if launcher else [PYTHON, "-m", "vmcp"]
    return [*head, "--config", str(config), "start", "-t", front, "--log-level", "warning"]


def rss_kib(pid: int) -> int:
    """Resident set size of one process (not its children), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    if match is None:
        raise BenchError(f"no VmRSS for process {pid}")
    return int(match.group(1))


def open_fds(pid: int) -> int:
    """File descriptors one process holds open (sockets, pipes, files)."""
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


def raise_fd_limit(needed: int) -> int:
    """Raise this process's soft limit of open files up to its hard limit (children started
    afterwards inherit it); the soft limit now. Raises :class:`BenchError` when even the hard
    limit is below ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise BenchError(f"{needed} open files are needed, the hard limit (ulimit -Hn) is {soft}")
    return soft


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time used so far by one process (all its threads, no children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid: int) -> float:
    """CPU time used so far by the live children of one process (a gateway's backends)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread or a child that ended meanwhile
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    return total


class ServerProcess:
    """A child that serves on a port and announces ``serving <name> on <url>`` on stderr
    (``announce``: the line that says it serves, its second group the URL)."""

    def __init__(self, command: Command, log: Path, timeout: float = 60.0,
                 announce: re.Pattern[str] = _ANNOUNCE) -> None:
        self.argv = command.argv
        self._announce = announce
        self.log = log
        self.url: str | None = None
        self._ready = threading.Event()
        #: the ``vmcp: ...`` lines seen so far (the addresses a child announces)
        self._announcements: list[str] = []
        self._seen = threading.Condition()
        self.process = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=command.env, cwd=REPO,
        )
        self._copier = threading.Thread(target=self._copy_stderr, daemon=True)
        self._copier.start()
        if not self._ready.wait(timeout) or self.url is None:
            self.close()
            tail = log.read_text("utf-8", "replace")[-1500:] if log.exists() else ""
            raise BenchError(f"{' '.join(self.argv[:4])} ... did not start serving:\n{tail}")

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def _copy_stderr(self) -> None:
        assert self.process.stderr is not None
        with self.log.open("ab") as out:
            for line in self.process.stderr:
                out.write(line)
                out.flush()
                text = line.decode("utf-8", "replace")
                if text.startswith("vmcp: "):
                    with self._seen:
                        self._announcements.append(text)
                        self._seen.notify_all()
                match = self._announce.search(text)
                if match and self.url is None:
                    self.url = match.group(2)
                    self._ready.set()
        self._ready.set()

    def announced(self, pattern: re.Pattern[str], timeout: float = 30.0) -> str:
        """The first group of the first ``vmcp: ...`` line matching ``pattern``, waiting up to
        ``timeout`` seconds for it."""
        def found() -> str | None:
            for line in self._announcements:
                if (match := pattern.search(line)) is not None:
                    return match.group(1)
            return None

        with self._seen:
            value = self._seen.wait_for(found, timeout)
        if value is None:
            raise BenchError(f"{' '.join(self.argv[:4])} ... never announced {pattern.pattern}")
        return value

    def close(self) -> None:
        """SIGTERM (the gateway's polite stop), then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._copier.join(5)
