"""What every scenario shares: its folder of configs and logs, interleaving, the HTTP check."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.procs import Command, bench_env, gateway_argv, write_config
from bench.settings import BenchSettings

#: the mount id every single-backend scenario uses; its tools are ``bench__tool_<n>``
MOUNT = "bench"


class Workspace:
    """A scenario's folder: a private VMCP_HOME, numbered config files and child logs."""

    def __init__(self, settings: BenchSettings, name: str) -> None:
        self.settings = settings
        self.root = settings.workdir / name
        self.root.mkdir(parents=True, exist_ok=True)
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        self.env = bench_env(home)
        self._counter = itertools.count(1)

    def log(self, label: str) -> Path:
        """A fresh log file for one child's stderr."""
        return self.root / f"{label}-{next(self._counter)}.log"

    def command(self, argv: list[str]) -> Command:
        """A child (not a gateway) run in this workspace's environment."""
        return Command(argv, self.env)

    def gateway(
        self,
        label: str,
        servers: Mapping[str, Mapping[str, Any]],
        gateway: Mapping[str, Any] | None = None,
        front: str = "stdio",
        http: Mapping[str, Any] | None = None,
        sections: Mapping[str, Mapping[str, Any]] | None = None,
        personas: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Command:
        """Write a configuration and return the ``vmcp start`` serving it.

        Each gateway gets a VMCP_HOME of its own: a home holds one running gateway at a time.
        ``http``: settings of the ``http`` front besides its port; ``sections``: other tables
        of its ``vmcp.toml``; ``personas``: persona files (name -> its JSON) in its home.
        """
        transports = {"http": {"port": 0, **(http or {})}} if front == "http" else None
        folder = self.root / f"{label}-{next(self._counter)}"
        config = write_config(folder / "vmcp.toml", servers, gateway, transports, sections)
        (folder / "home").mkdir(exist_ok=True)
        if personas:
            store = folder / "home" / "config" / "personas"
            store.mkdir(parents=True, exist_ok=True)
            for name, persona in personas.items():
                (store / f"{name}.json").write_text(json.dumps({"name": name, **persona}))
        return Command(gateway_argv(config, front, self.settings.gateway_launcher),
                       {**self.env, "VMCP_HOME": str(folder / "home")})


def interleaved(reps: int, names: Sequence[str]) -> Iterator[tuple[int, str]]:
    """Every target once per repetition, the order rotated each time to cancel drift."""
    for rep in range(reps):
        shift = rep % len(names)
        for name in [*names[shift:], *names[:shift]]:
            yield rep, name


def http_unavailable() -> str | None:
    """Why the HTTP scenarios cannot run here, or None when the ``http`` front loads."""
    try:
        from vmcp.plugins import load_driver

        load_driver("transports", "http")
        import aiohttp  # noqa: F401  (the direct reference server needs it)
    except Exception as exc:
        return f"the http transport driver is not available: {exc}"
    return None
