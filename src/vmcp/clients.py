"""MCP clients' own configuration files: where each keeps its servers, and vmcp's entry there.

Each known client (Claude Desktop, Claude Code, Cursor, VS Code, Windsurf) lists its stdio
servers under one key of a JSON file. This module finds that file for a home folder and a
platform, builds the entry that starts the vmcp being run, and adds or removes it while
keeping every other key and entry of the file, with the old file kept as ``<file>.bak``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmcp.fileutil import atomic_write_text

#: the entry name ``add`` and ``remove`` use when none is given
DEFAULT_NAME = "vmcp"


class ClientConfigError(Exception):
    """A client's configuration file cannot be read or changed as asked; nothing was written."""


def _app_support(home: Path, platform: str) -> Path:
    """The per-user application data folder desktop apps keep their settings in."""
    if platform == "darwin":
        return home / "Library" / "Application Support"
    if platform == "win32":
        return home / "AppData" / "Roaming"
    return home / ".config"


@dataclass(frozen=True)
class KnownClient:
    """One MCP client: its configuration file and how it lists servers."""

    name: str
    title: str
    #: the top-level key holding the servers
    key: str
    #: the client wants ``"type": "stdio"`` in each stdio entry
    typed: bool
    locate: Callable[[Path, str], Path]

    def config_path(self, home: Path, platform: str = sys.platform) -> Path:
        """The client's configuration file for user folder ``home`` on ``platform``."""
        return self.locate(home, platform)


CLIENTS: dict[str, KnownClient] = {c.name: c for c in (
    KnownClient("claude-desktop", "Claude Desktop", "mcpServers", False,
                lambda h, p: _app_support(h, p) / "Claude" / "claude_desktop_config.json"),
    KnownClient("claude-code", "Claude Code", "mcpServers", True,
                lambda h, p: h / ".claude.json"),
    KnownClient("cursor", "Cursor", "mcpServers", False,
                lambda h, p: h / ".cursor" / "mcp.json"),
    KnownClient("vscode", "VS Code", "servers", True,
                lambda h, p: _app_support(h, p) / "Code" / "User" / "mcp.json"),
    KnownClient("windsurf", "Windsurf", "mcpServers", False,
                lambda h, p: h / ".codeium" / "windsurf" / "mcp_config.json"),
)}


def vmcp_launcher() -> tuple[str, list[str]]:
    """The absolute command (and leading arguments) that runs this same vmcp.

    The ``vmcp`` script beside the running interpreter when there is one, else the
    interpreter with ``-m vmcp``: clients start servers with a small PATH and in ``/``, so
    neither a bare ``vmcp`` nor ``uv run`` would be found or pick the right project.
    """
    interpreter = Path(sys.executable).absolute()
    script = interpreter.parent / "vmcp"
    if script.is_file():
        return str(script), []
    return str(interpreter), ["-m", "vmcp"]


def build_entry(client: KnownClient, vmcp_home: Path, persona: str | None = None,
                config: Path | None = None, connect: bool = False) -> dict[str, Any]:
    """The server entry that has ``client`` run ``vmcp start`` on home ``vmcp_home`` (or,
    with ``connect``, ``vmcp connect``: a relay to the gateway running with that home)."""
    command, args = vmcp_launcher()
    if config is not None:
        args += ["--config", str(config.absolute())]
    args.append("connect" if connect else "start")
    if persona:
        args += ["--persona", persona]
    entry: dict[str, Any] = {"type": "stdio"} if client.typed else {}
    entry.update(command=command, args=args, env={"VMCP_HOME": str(vmcp_home.absolute())})
    return entry


def read_config(path: Path) -> dict[str, Any]:
    """The client file's JSON object, or ``{}`` when the file does not exist yet."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ClientConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ClientConfigError(
            f"{path} is not plain JSON ({exc}); fix or move it, then run again") from exc
    if not isinstance(data, dict):
        raise ClientConfigError(f"{path} holds a JSON {type(data).__name__}, not an object")
    return data


def servers_of(client: KnownClient, data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The servers table in ``data`` (a new empty one when the file has none)."""
    servers = data.setdefault(client.key, {})
    if not isinstance(servers, dict):
        raise ClientConfigError(f"{path}: {client.key!r} is not a JSON object")
    return servers


def is_vmcp_entry(entry: Any) -> bool:
    """True when a server entry runs vmcp (its script, or ``python -m vmcp``)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
        return False
    args = entry.get("args")
    return (Path(entry["command"]).name == "vmcp"
            or (isinstance(args, list) and args[:2] == ["-m", "vmcp"]))


def _write(path: Path, data: dict[str, Any]) -> Path | None:
    """Write ``data`` over ``path``, first copying the old file to ``<file>.bak``."""
    backup = None
    mode = 0o644
    if path.exists():
        mode = path.stat().st_mode & 0o777
        backup = path.with_name(path.name + ".bak")
        atomic_write_text(backup, path.read_text("utf-8"), mode)
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", mode)
    return backup


def add_entry(client: KnownClient, path: Path, name: str, entry: dict[str, Any],
              force: bool = False) -> Path | None:
    """Put ``entry`` under ``name`` in the client file; returns the backup made, if any.

    :raises ClientConfigError: the file is not a JSON object, or ``name`` is taken and
        ``force`` is not set.
    """
    data = read_config(path)
    servers = servers_of(client, data, path)
    if name in servers and not force:
        raise ClientConfigError(
            f"{path} already has a server named {name!r}; use --force to replace it "
            "or --name to pick another name")
    servers[name] = entry
    return _write(path, data)


def remove_entry(client: KnownClient, path: Path, name: str) -> Path | None:
    """Delete server ``name`` from the client file; returns the backup made.

    :raises ClientConfigError: the file or the entry does not exist, or is not JSON.
    """
    data = read_config(path)
    servers = data.get(client.key)
    if not isinstance(servers, dict) or name not in servers:
        raise ClientConfigError(f"{path} has no server named {name!r}")
    del servers[name]
    return _write(path, data)


def vmcp_entries(client: KnownClient, path: Path) -> dict[str, dict[str, Any]]:
    """The entries of the client file that run vmcp, by name (none when it is missing)."""
    servers = read_config(path).get(client.key)
    if not isinstance(servers, dict):
        return {}
    return {name: entry for name, entry in servers.items() if is_vmcp_entry(entry)}
