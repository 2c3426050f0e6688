"""The configured repository sources, kept in ``$VMCP_HOME/config/repositories.toml``.

Each source is a table::

    [repositories.community]
    url = "https://example.org/mcp-servers.git"
    type = "git"
    ref = "v1.2"          # settings the driver understands

Sources may also be declared in the ``[repositories]`` table of ``vmcp.toml``; those are
listed and synced but changed only by editing that file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from vmcp import tomlwrite
from vmcp.config import ConfigError, RepositoryConfig, format_errors, read_table
from vmcp.fileutil import atomic_write_text, state_lock
from vmcp.plugins import load_driver
from vmcp.repository.base import RepositorySource

SOURCE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
_HEADER = "# Repository sources of MCP server manifests; managed by `vmcp repo`.\n\n"


def guess_type(url: str) -> str:
    """The source type a URL most likely is: ``git``, ``pypi`` or ``http``."""
    parsed = urlparse(url)
    path = parsed.path.rstrip("/")
    if url.startswith(("git@", "git://", "ssh://", "file://")) or path.endswith(".git"):
        return "git"
    if parsed.scheme == "" and Path(url).is_dir():
        return "git"
    if path.endswith("/simple") or parsed.hostname in ("pypi.org", "test.pypi.org"):
        return "pypi"
    return "http"


def derive_name(url: str, taken: set[str]) -> str:
    """A source name made from the URL (its last path part or host), unique among ``taken``."""
    parsed = urlparse(url)
    parts = [p for p in parsed.path.split("/") if p and p not in ("simple", "v0", "servers")]
    base = parts[-1] if parts else (parsed.hostname or url)
    base = re.sub(r"\.(git|json)$", "", base.lower())
    base = re.sub(r"[^a-z0-9]+", "-", base).strip("-")[:40] or "source"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def make_source(name: str, config: RepositoryConfig) -> RepositorySource:
    """Instantiate the driver of one source with its settings.

    :raises vmcp.plugins.PluginError: the driver is not installed or fails to load.
    :raises ValueError: the driver rejects the settings.
    """
    driver = load_driver("repositories", config.type)
    settings = {k: v for k, v in config.model_dump().items() if k not in ("url", "type")}
    return driver(name, config.url, **settings)


class SourceStore:
    """Reads and changes the configured sources."""

    def __init__(self, path: Path, declared: dict[str, RepositoryConfig] | None = None) -> None:
        """:param declared: sources from ``vmcp.toml``, read-only here."""
        self.path = path
        self.declared = dict(declared or {})

    def _read(self) -> dict[str, dict[str, Any]]:
        return read_table(self.path, "repositories")

    def load(self) -> dict[str, RepositoryConfig]:
        """Every source by name: those of ``vmcp.toml`` then those of ``repositories.toml``.

        :raises ConfigError: the file is unreadable or an entry is invalid.
        """
        sources = dict(self.declared)
        problems = []
        for name, table in self._read().items():
            try:
                sources[name] = RepositoryConfig.model_validate(table)
            except ValidationError as exc:
                problems.extend(f"repositories.{name}.{p}" for p in format_errors(exc))
        if problems:
            raise ConfigError(str(self.path), problems)
        return sources

    def add(self, name: str, config: RepositoryConfig) -> None:
        """Add a source after checking its name, its driver and its settings.

        :raises ValueError: the name is invalid or taken, or the settings are rejected.
        :raises vmcp.plugins.PluginError: no driver for its type is installed.
        """
        if not SOURCE_NAME_RE.fullmatch(name):
            raise ValueError(f"source name {name!r} must match {SOURCE_NAME_RE.pattern}")
        make_source(name, config)
        with state_lock(self.path):
            if name in self.load():
                raise ValueError(f"a source named {name!r} exists already")
            table = self._read()
            table[name] = config.model_dump()
            self._write(table)

    def remove(self, name: str) -> None:
        """Remove a source from ``repositories.toml``.

        :raises KeyError: there is no such source there (the message says where it is).
        """
        with state_lock(self.path):
            table = self._read()
            if name not in table:
                where = " (it is declared in vmcp.toml)" if name in self.declared else ""
                raise KeyError(f"no source {name!r} in {self.path}{where}")
            del table[name]
            self._write(table)

    def _write(self, table: dict[str, dict[str, Any]]) -> None:
        text = tomlwrite.dumps({"repositories": table}) if table else ""
        atomic_write_text(self.path, _HEADER + text)
