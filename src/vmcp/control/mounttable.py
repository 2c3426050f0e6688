"""Enabling and disabling a mount in the configuration files (no gateway running).

The flag is changed in the file that defines the server: ``servers.toml`` beside the
configuration, else ``vmcp.toml`` itself. Only the ``enabled`` line of that server's table is
touched, so comments and layout stay; a table the line edit cannot handle (an inline table,
say) is rewritten whole. A fresh install with no mount table gets a ``servers.toml`` holding
the shipped demo table, changed.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from vmcp import tomlwrite
from vmcp.config import default_config_path, load_config
from vmcp.fileutil import atomic_write_text, state_lock

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_ENABLED = re.compile(r"^(\s*)enabled\s*=\s*(true|false)\s*(#.*)?$")


class MountTableError(Exception):
    """The server is not defined, or the file could not be changed."""


def _servers_of(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        servers = tomllib.load(fh).get("servers", {})
    return servers if isinstance(servers, dict) else {}


def _header_names(mount_id: str) -> set[str]:
    return {f"servers.{mount_id}", f'servers."{mount_id}"', f"servers.'{mount_id}'"}


def _line_edit(text: str, mount_id: str, enabled: bool) -> str | None:
    """``text`` with the flag set by editing one line, or None when there is no table header."""
    lines = text.splitlines(keepends=True)
    value = "true" if enabled else "false"
    names = _header_names(mount_id)
    for index, line in enumerate(lines):
        match = _HEADER.match(line)
        if not match or re.sub(r"\s*\.\s*", ".", match.group(1)) not in names:
            continue
        end = index + 1
        while end < len(lines) and not _HEADER.match(lines[end]):
            flag = _ENABLED.match(lines[end])
            if flag:
                comment = f"  {flag.group(3)}" if flag.group(3) else ""
                lines[end] = f"{flag.group(1)}enabled = {value}{comment}\n"
                return "".join(lines)
            end += 1
        lines.insert(index + 1, f"enabled = {value}\n")
        return "".join(lines)
    return None


def _set_in_file(path: Path, text: str, mount_id: str, enabled: bool) -> None:
    edited = _line_edit(text, mount_id, enabled)
    try:
        ok = edited is not None and tomllib.loads(edited)["servers"][mount_id]["enabled"] is enabled
    except (tomllib.TOMLDecodeError, KeyError, TypeError):
        ok = False
    if not ok:
        data = tomllib.loads(text)
        data["servers"][mount_id]["enabled"] = enabled
        edited = tomlwrite.dumps(data)
    assert edited is not None
    atomic_write_text(path, edited)


def set_enabled(config_path: Path | None, mount_id: str, enabled: bool) -> Path:
    """Mark ``mount_id`` enabled or disabled in the configuration; return the file changed.

    :raises MountTableError: no server with that id is configured.
    :raises ConfigError: the configuration is invalid.
    """
    source = config_path or default_config_path()
    servers_file = source.parent / "servers.toml"
    with state_lock(servers_file):  # the lock of the mount table, whichever file holds the mount
        return _set_enabled(config_path, source, servers_file, mount_id, enabled)


def _set_enabled(
    config_path: Path | None, source: Path, servers_file: Path, mount_id: str, enabled: bool
) -> Path:
    if mount_id in _servers_of(servers_file):
        target, text = servers_file, servers_file.read_text(encoding="utf-8")
    elif mount_id in _servers_of(source):
        target, text = source, source.read_text(encoding="utf-8")
    else:
        config, _ = load_config(config_path)
        if mount_id not in config.servers or servers_file.exists() or _servers_of(source):
            known = ", ".join(config.servers) or "none"
            raise MountTableError(f"no mount {mount_id!r} in the configuration "
                                  f"(configured: {known})")
        target = servers_file
        text = resources.files("vmcp.defaults").joinpath("servers.toml").read_text("utf-8")
    _set_in_file(target, text, mount_id, enabled)
    return target
