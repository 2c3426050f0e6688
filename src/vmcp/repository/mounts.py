"""Adding and removing entries of the mount table, ``config/servers.toml``.

Each entry is a ``[servers.<id>]`` table that :class:`vmcp.config.MountConfig` accepts; it is
checked with that model before anything is written, and the file is rewritten atomically.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vmcp import tomlwrite
from vmcp.config import MOUNT_ID_RE, ConfigError, MountConfig, format_errors, read_table
from vmcp.fileutil import atomic_write_text, state_lock

_HEADER = (
    "# The mount table: one [servers.<id>] table per mounted MCP server.\n"
    "# `vmcp install` and `vmcp mount` add entries here; edit freely.\n\n"
)
#: the keys an installed server's entry sets; the others (prefix, timeout...) are the user's
LAUNCH_KEYS = ("transport", "command", "args", "env", "url", "headers", "description")


def mount_id_for(name: str) -> str:
    """A mount id derived from a server name (its last part, lower-cased, made id-safe)."""
    base = re.sub(r"[^a-z0-9]+", "-", name.rsplit("/", 1)[-1].lower()).strip("-")
    return base[:48].rstrip("-") or "server"


class MountTable:
    """The mount table file at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every ``[servers.<id>]`` table, as written.

        :raises ConfigError: the file is not valid TOML.
        """
        return read_table(self.path, "servers")

    def free_id(self, wanted: str) -> str:
        """``wanted``, or ``wanted-2``, ``wanted-3``... whichever is not in the table yet."""
        taken = set(self.entries())
        candidate, n = wanted, 2
        while candidate in taken:
            suffix = f"-{n}"
            candidate, n = wanted[: 48 - len(suffix)] + suffix, n + 1
        return candidate

    def put(self, mount_id: str, entry: dict[str, Any]) -> None:
        """Add or replace the entry ``mount_id``.

        :raises ConfigError: the id or the entry is not a valid mount.
        """
        self.put_many({mount_id: entry})

    def put_many(self, entries: dict[str, dict[str, Any]]) -> None:
        """Add or replace several entries in one write; none is written if one is invalid.

        :raises ConfigError: an id or an entry is not a valid mount.
        """
        cleaned = {}
        for mount_id, entry in entries.items():
            if not MOUNT_ID_RE.fullmatch(mount_id):
                raise ConfigError(str(self.path), [
                    f"mount id {mount_id!r} must match {MOUNT_ID_RE.pattern}"
                ])
            clean = {k: v for k, v in entry.items() if v not in (None, [], {})}
            try:
                MountConfig.model_validate({"id": mount_id, **clean})
            except ValidationError as exc:
                problems = [f"servers.{mount_id}.{p}" for p in format_errors(exc)]
                raise ConfigError(str(self.path), problems) from exc
            cleaned[mount_id] = clean
        with state_lock(self.path):
            servers = self.entries()
            servers.update(cleaned)
            self._write(servers)

    def remove(self, mount_id: str) -> bool:
        """Remove the entry ``mount_id``; return False when there was none."""
        with state_lock(self.path):
            servers = self.entries()
            if servers.pop(mount_id, None) is None:
                return False
            self._write(servers)
        return True

    def _write(self, servers: dict[str, dict[str, Any]]) -> None:
        atomic_write_text(self.path, _HEADER + tomlwrite.dumps({"servers": servers}))
