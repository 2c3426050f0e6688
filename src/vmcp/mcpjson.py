"""The ``mcpServers`` JSON that MCP clients keep, turned into mounts and back.

Claude Desktop, Claude Code, Cursor and Windsurf list servers under ``mcpServers``; VS Code
under ``servers`` (each entry with a ``type``). An entry is a command (``command``, ``args``,
``env``, ``cwd``) or a remote (``url``, Windsurf's ``serverUrl``, with ``type`` and
``headers``). :func:`plan_import` turns such a table into ``[servers.<id>]`` entries of the
mount table, :func:`export_servers` turns mounts into such a table.

Secrets are not copied in clear: an ``env`` value or header whose name says it is a secret
(token, key, password...) becomes a ``${VAR}`` reference, which the gateway fills in from its
own environment. Client variable syntaxes (``${env:VAR}``, ``${VAR:-default}``,
``${input:id}``) become the gateway's ``${VAR}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from vmcp.clients import is_vmcp_entry
from vmcp.config import MountConfig, driver_problems, format_errors, python_executable
from vmcp.repository.mounts import mount_id_for

#: env variable and header names taken for secrets
_SECRET_NAME = re.compile(
    r"(?i)(token|secret|passw|api[_-]?key|access[_-]?key|private[_-]?key|credential|"
    r"authorization|cookie|auth)")
_CLIENT_VAR = re.compile(
    r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}|\$\{input:([A-Za-z0-9_.-]+)\}")
_GATEWAY_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_REMOTE_TYPES = {"http": "http", "streamable-http": "http", "streamablehttp": "http",
                 "sse": "sse", "ws": "ws", "websocket": "ws"}
_URL_KEYS = ("url", "serverUrl", "httpUrl")

#: the formats :func:`export_servers` writes
ExportFormat = Literal["mcp-json", "vscode"]


@dataclass
class ImportPlan:
    """What importing a client's servers would do; nothing is written by making one."""

    #: mount id -> the ``[servers.<id>]`` table to write
    mounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: entry name -> why it is not imported
    skipped: dict[str, str] = field(default_factory=dict)
    #: things the user should know (secrets turned into references, settings left out)
    notes: list[str] = field(default_factory=list)
    #: entry name -> mount id, for entries that got an id other than their name
    renamed: dict[str, str] = field(default_factory=dict)


def servers_table(data: Mapping[str, Any]) -> dict[str, Any]:
    """The servers of a client file: ``mcpServers``, else VS Code's ``servers``, else ``{}``.

    :raises ValueError: the key exists but is not a JSON object.
    """
    for key in ("mcpServers", "servers"):
        if key in data:
            table = data[key]
            if not isinstance(table, dict):
                raise ValueError(f"{key!r} is not a JSON object")
            return table
    return {}


def _gateway_vars(text: str, notes: list[str], where: str) -> str:
    """``text`` with each client variable reference written as the gateway's ``${VAR}``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(2) is not None:
            name = re.sub(r"[^A-Za-z0-9_]", "_", match.group(2)).upper()
            notes.append(f"{where}: the client prompted for input {match.group(2)!r}; "
                         f"the mount reads ${{{name}}} from the gateway's environment")
            return "${" + name + "}"
        return "${" + match.group(1) + "}"

    return _CLIENT_VAR.sub(replace, text)


def _secret_env(env: dict[str, str], mount_id: str, keep: bool,
                notes: list[str]) -> dict[str, str]:
    out = {}
    for key, value in env.items():
        if not keep and _SECRET_NAME.search(key) and not _GATEWAY_VAR.search(value):
            notes.append(f"{mount_id}: env {key} is a secret, stored as ${{{key}}}: "
                         "export it where the gateway runs")
            value = "${" + key + "}"
        out[key] = value
    return out


def _secret_headers(headers: dict[str, str], mount_id: str, keep: bool,
                    notes: list[str]) -> dict[str, str]:
    out = {}
    for key, value in headers.items():
        if not keep and _SECRET_NAME.search(key) and not _GATEWAY_VAR.search(value):
            var = re.sub(r"[^A-Za-z0-9]+", "_", f"{mount_id}_{key}").upper()
            scheme, sep, _ = value.partition(" ")
            value = f"{scheme} ${{{var}}}" if sep and scheme.lower() in ("bearer", "basic") \
                else "${" + var + "}"
            notes.append(f"{mount_id}: header {key} is a secret, stored as ${{{var}}}: "
                         "export it where the gateway runs")
        out[key] = value
    return out


def _strings(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str | int | float | bool)
                                              for v in value.values()):
        raise ValueError(f"{what} must be an object of strings")
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}


def convert_entry(name: str, entry: Any, mount_id: str, keep_secrets: bool = False,
                  notes: list[str] | None = None) -> dict[str, Any]:
    """The mount-table entry for one client server entry.

    :raises ValueError: the entry is neither a command nor a URL, or has malformed fields.
    """
    notes = [] if notes is None else notes
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    where = mount_id
    mount: dict[str, Any] = {}
    url = next((entry[k] for k in _URL_KEYS if isinstance(entry.get(k), str)), None)
    kind = str(entry.get("type") or entry.get("transport") or "").lower().replace("_", "-")
    if isinstance(entry.get("command"), str) and entry["command"]:
        args = entry.get("args") or []
        if not isinstance(args, list):
            raise ValueError("args must be a list")
        mount["command"] = _gateway_vars(entry["command"], notes, where)
        mount["args"] = [_gateway_vars(str(a), notes, where) for a in args]
        env = {k: _gateway_vars(v, notes, where)
               for k, v in _strings(entry.get("env"), "env").items()}
        mount["env"] = _secret_env(env, mount_id, keep_secrets, notes)
        if isinstance(entry.get("cwd"), str):
            mount["cwd"] = _gateway_vars(entry["cwd"], notes, where)
    elif url is not None:
        transport = _REMOTE_TYPES.get(kind)
        if transport is None:
            if kind:
                raise ValueError(f"unknown type {entry.get('type')!r}")
            transport = "sse" if url.rstrip("/").endswith("/sse") else "http"
        mount["transport"] = transport
        mount["url"] = _gateway_vars(url, notes, where)
        headers = {k: _gateway_vars(v, notes, where)
                   for k, v in _strings(entry.get("headers"), "headers").items()}
        mount["headers"] = _secret_headers(headers, mount_id, keep_secrets, notes)
    else:
        raise ValueError("has neither a command nor a url")
    if entry.get("disabled") is True:
        mount["enabled"] = False
    if "envFile" in entry:
        notes.append(f"{where}: envFile {entry['envFile']!r} is not read by vmcp; "
                     "set those variables in the mount's env")
    return {k: v for k, v in mount.items() if v not in ([], {})}


def plan_import(servers: Mapping[str, Any], existing: Mapping[str, Any] | None = None,
                keep_secrets: bool = False, replace: bool = False) -> ImportPlan:
    """Which mounts importing ``servers`` (a client's servers table) would write.

    :param existing: the configured mounts' tables by id; an entry whose id is taken is
        skipped (said to be the same when it is), unless ``replace``.
    :param keep_secrets: copy secret values in clear instead of as ``${VAR}`` references.
    """
    existing = existing or {}
    plan = ImportPlan()
    for name, entry in servers.items():
        if is_vmcp_entry(entry):
            plan.skipped[name] = "runs vmcp itself"
            continue
        mount_id = mount_id_for(name)
        if mount_id in plan.mounts:
            plan.skipped[name] = f"its id {mount_id!r} is taken by another entry of this file"
            continue
        notes: list[str] = []
        try:
            mount = convert_entry(name, entry, mount_id, keep_secrets, notes)
            MountConfig.model_validate({"id": mount_id, **mount})
        except ValueError as exc:
            reason = "; ".join(format_errors(exc)) if isinstance(exc, ValidationError) \
                else str(exc)
            plan.skipped[name] = reason
            continue
        problems = driver_problems({"servers": {mount_id: mount}})
        if problems:
            plan.skipped[name] = "; ".join(message for _, message in problems)
            continue
        if mount_id in existing:
            if existing[mount_id] == mount:
                plan.skipped[name] = f"already configured as {mount_id!r}, the same"
                continue
            if not replace:
                plan.skipped[name] = (f"a different mount {mount_id!r} is already configured "
                                      "(--replace overwrites it)")
                continue
        plan.mounts[mount_id] = mount
        plan.notes.extend(notes)
        if mount_id != name:
            plan.renamed[name] = mount_id
    return plan


def _client_vars(text: str, style: ExportFormat) -> str:
    """A gateway value as a client reads it: ``${VMCP_PYTHON}`` resolved, other
    ``${VAR}`` in the client's syntax."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "VMCP_PYTHON":
            return python_executable()
        return "${env:" + match.group(1) + "}" if style == "vscode" else match.group(0)

    return _GATEWAY_VAR.sub(replace, text)


def export_entry(mount: MountConfig, style: ExportFormat = "mcp-json") -> dict[str, Any]:
    """One mount as a client's server entry.

    :raises ValueError: clients cannot reach this transport (``ws``).
    """
    entry: dict[str, Any] = {}
    if mount.transport == "stdio":
        if style == "vscode":
            entry["type"] = "stdio"
        entry["command"] = _client_vars(mount.command or "", style)
        entry["args"] = [_client_vars(a, style) for a in mount.args]
        if mount.env:
            entry["env"] = {k: _client_vars(v, style) for k, v in mount.env.items()}
        if mount.cwd:
            entry["cwd"] = _client_vars(mount.cwd, style)
        return entry
    if mount.transport not in ("http", "sse"):
        raise ValueError(f"MCP clients do not connect over {mount.transport!r}")
    entry["type"] = mount.transport
    entry["url"] = mount.url or mount.urls[0]
    if mount.headers:
        entry["headers"] = {k: _client_vars(v, style) for k, v in mount.headers.items()}
    return entry


def export_servers(mounts: Mapping[str, MountConfig], style: ExportFormat = "mcp-json",
                   ) -> tuple[dict[str, Any], dict[str, str]]:
    """The client file for ``mounts`` and, by id, the mounts left out with the reason."""
    servers: dict[str, Any] = {}
    left_out: dict[str, str] = {}
    for mount_id, mount in mounts.items():
        try:
            servers[mount_id] = export_entry(mount, style)
        except ValueError as exc:
            left_out[mount_id] = str(exc)
    return {"servers" if style == "vscode" else "mcpServers": servers}, left_out
