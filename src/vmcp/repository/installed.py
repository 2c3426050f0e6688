"""Installed servers and their versions, side by side under ``installed/servers/``.

Layout, for a server ``example/weather``::

    installed/servers/example%2Fweather/
        state.json            which version is current, which was before, which mounts use it
        1.2.0/                one folder per version: venv/, node/ or bundle/ ...
            vmcp-install.json the record of a complete install (written last)

A version folder without its record is the remains of an interrupted install: it is not
listed and is replaced by the next install of that version. Every file is written atomically.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote

from pydantic import BaseModel, Field, ValidationError

from vmcp.fileutil import atomic_write_text
from vmcp.repository.versions import check_version, version_key

RECORD_FILE = "vmcp-install.json"
STATE_FILE = "state.json"


class Variable(BaseModel):
    """An environment variable the server reads."""

    name: str
    description: str = ""
    required: bool = False
    secret: bool = False
    default: str | None = None
    value: str | None = None


class Launch(BaseModel):
    """How to reach the installed server: a command to spawn, or a URL."""

    transport: Literal["stdio", "http", "sse"] = "stdio"
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    variables: list[Variable] = Field(default_factory=list)


class InstallRecord(BaseModel):
    """One installed version."""

    name: str
    version: str
    source: str
    method: str
    installed_at: float
    launch: Launch
    description: str = ""
    manifest: dict[str, Any] = Field(default_factory=dict)
    #: the values the user gave the package's arguments (``--arg``), reused by ``update``
    arguments: dict[str, str] = Field(default_factory=dict)


class ServerState(BaseModel):
    """Which version of a server is in use, and where it is mounted."""

    name: str
    current: str | None = None
    previous: str | None = None
    mounts: list[str] = Field(default_factory=list)
    #: mount id -> the version it is held at; updates and rollbacks leave such mounts alone
    pins: dict[str, str] = Field(default_factory=dict)


def server_folder_name(name: str) -> str:
    """The folder name of a server: its name with ``/`` (and anything unsafe) escaped."""
    return quote(name, safe="._-")


class InstalledStore:
    """Reads and changes what is installed under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def server_dir(self, name: str) -> Path:
        """The folder of all versions of ``name``."""
        return self.root / server_folder_name(name)

    def version_dir(self, name: str, version: str) -> Path:
        """The folder of one version (the version is checked to be a safe folder name)."""
        return self.server_dir(name) / check_version(version)

    def names(self) -> list[str]:
        """Every server with at least one complete install, sorted."""
        if not self.root.is_dir():
            return []
        found = [unquote(d.name) for d in self.root.iterdir() if d.is_dir()]
        return sorted(n for n in found if self.versions(n))

    def versions(self, name: str) -> list[InstallRecord]:
        """The complete installs of ``name``, oldest first."""
        folder = self.server_dir(name)
        if not folder.is_dir():
            return []
        records = []
        for sub in folder.iterdir():
            record = self._read_record(sub / RECORD_FILE)
            if record is not None:
                records.append(record)
        return sorted(records, key=lambda r: version_key(r.version))

    def record(self, name: str, version: str) -> InstallRecord | None:
        """The record of one installed version, or None."""
        return self._read_record(self.version_dir(name, version) / RECORD_FILE)

    @staticmethod
    def _read_record(path: Path) -> InstallRecord | None:
        try:
            return InstallRecord.model_validate_json(path.read_text("utf-8"))
        except (OSError, ValidationError):
            return None

    def write_record(self, record: InstallRecord) -> None:
        """Mark a version as completely installed."""
        path = self.version_dir(record.name, record.version) / RECORD_FILE
        atomic_write_text(path, record.model_dump_json(indent=2) + "\n")

    def state(self, name: str) -> ServerState:
        """The server's state (a fresh one when it has none)."""
        path = self.server_dir(name) / STATE_FILE
        try:
            return ServerState.model_validate_json(path.read_text("utf-8"))
        except (OSError, ValidationError):
            return ServerState(name=name)

    def save_state(self, state: ServerState) -> None:
        """Store the server's state."""
        path = self.server_dir(state.name) / STATE_FILE
        atomic_write_text(path, json.dumps(state.model_dump(), indent=2) + "\n")

    def remove_version(self, name: str, version: str) -> None:
        """Delete one version's folder (the record first, so a crash leaves no live half)."""
        folder = self.version_dir(name, version)
        (folder / RECORD_FILE).unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)

    def remove_server(self, name: str) -> None:
        """Delete every version and the state of ``name``."""
        folder = self.server_dir(name)
        for sub in folder.glob(f"*/{RECORD_FILE}"):
            sub.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
