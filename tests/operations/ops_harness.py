"""Helpers for the operations tests: a home folder with a configuration, and ``vmcp`` run as a
real command against it (``python -m vmcp`` with ``VMCP_HOME`` set)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from vmcp.cli import cli

FIXTURE_SERVERS = Path(__file__).resolve().parent.parent / "fixtures" / "servers"
ALPHA = FIXTURE_SERVERS / "alpha.py"
REPLICA = FIXTURE_SERVERS / "replica.py"
#: seconds a command (a daemon start included) may take
COMMAND_TIMEOUT = 60.0


def backend(script: Path, **settings: Any) -> dict[str, Any]:
    """A stdio mount running a fixture server with this interpreter."""
    return {"command": sys.executable, "args": [str(script)], **settings}


def toml_value(value: Any) -> str:
    """A TOML value for a JSON-like one (inline tables for dicts)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}"
                                for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def toml_text(tables: dict[str, dict[str, Any]]) -> str:
    """``{"gateway": {...}, "servers.alpha": {...}}`` as a TOML document."""
    lines: list[str] = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
        lines.append("")
    return "\n".join(lines)


@dataclass
class Home:
    """A ``VMCP_HOME`` with its ``config/vmcp.toml``."""

    path: Path

    @property
    def config(self) -> Path:
        """The configuration file the gateway reads (and reloads)."""
        return self.path / "config" / "vmcp.toml"

    def write(self, tables: dict[str, dict[str, Any]]) -> None:
        """Write the configuration."""
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(toml_text(tables), encoding="utf-8")

    def env(self) -> dict[str, str]:
        """The environment of a ``vmcp`` command for this home."""
        env = {k: v for k, v in os.environ.items() if k != "VMCP_CONFIG"}
        env["VMCP_HOME"] = str(self.path)
        return env

    def vmcp(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``vmcp ARGS`` as a command of its own, to completion."""
        return subprocess.run([sys.executable, "-m", "vmcp", *args], env=self.env(),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, check=False)

    def cli(self, *args: str) -> Result:
        """Run ``vmcp ARGS`` in this process (no interpreter start-up; the gateway it talks
        to is still the real one)."""
        runner = CliRunner()
        return runner.invoke(cli, list(args), env={"VMCP_HOME": str(self.path),
                                                   "VMCP_CONFIG": None},
                             catch_exceptions=False)

    def cli_json(self, *args: str) -> Any:
        """Run ``vmcp ARGS --json`` in this process and parse its output (it must succeed)."""
        out = self.cli(*args, "--json")
        assert out.exit_code == 0, out.stderr
        return json.loads(out.stdout)

    @property
    def pid_file(self) -> Path:
        """``run/vmcp.pid``."""
        return self.path / "run" / "vmcp.pid"

    def ensure_stopped(self) -> None:
        """Teardown: whatever a test left running with this home is ended."""
        if not self.pid_file.exists():
            return
        if self.vmcp("stop").returncode != 0 and self.pid_file.exists():
            pid = int(self.pid_file.read_text())
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """True when the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """Bounded wait for a process that was told to end (polls an external process)."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_for_text(path: Path, text: str, timeout: float = 15.0) -> bool:
    """Bounded wait for a line another process writes to a file (polls the file)."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def scrape(url: str) -> dict[str, float]:
    """The samples of a Prometheus exposition, ``name{labels}`` -> value."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples
