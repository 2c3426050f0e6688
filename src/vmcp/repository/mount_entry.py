"""Building a mount-table entry from an installed version and the variable values given.

Secret variables are never written in clear: the entry refers to them as ``${VAR}``, which
the gateway fills in from its own environment when it starts the server. Other required
variables take the value the user gave, the one an existing mount already has, or the
manifest's default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vmcp.repository.errors import InstallError
from vmcp.repository.installed import InstallRecord, Variable


def missing_variables(
    variables: list[Variable],
    values: Mapping[str, str],
    existing: Mapping[str, str] | None = None,
) -> list[Variable]:
    """The required, non-secret variables that have no value from any of those places."""
    existing = existing or {}
    return [
        v for v in variables
        if v.required and not v.secret and v.value is None and v.default is None
        and v.name not in values and v.name not in existing
    ]


def _resolve(
    variables: list[Variable], values: Mapping[str, str], existing: Mapping[str, str]
) -> dict[str, str]:
    """Each variable's value for the entry (``${VAR}`` for secrets); optional unset ones omitted."""
    missing = missing_variables(variables, values, existing)
    if missing:
        names = ", ".join(v.name for v in missing)
        raise InstallError(f"required variables without a value: {names} (pass --env NAME=VALUE)")
    resolved: dict[str, str] = {}
    for var in variables:
        if var.value is not None:
            resolved[var.name] = var.value
        elif var.secret:
            resolved[var.name] = "${" + var.name + "}"
        elif var.name in values:
            resolved[var.name] = values[var.name]
        elif var.name in existing:
            resolved[var.name] = existing[var.name]
        elif var.default is not None:
            resolved[var.name] = var.default
    return resolved


def mount_entry(
    record: InstallRecord,
    values: Mapping[str, str],
    existing_env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``[servers.<id>]`` table for ``record``.

    :param values: variable values the user gave (``--env`` or prompts).
    :param existing_env: the ``env`` of the mount being switched to this version, if any.
    :raises InstallError: a required variable has no value.
    """
    launch = record.launch
    resolved = _resolve(launch.variables, values, existing_env or {})
    entry: dict[str, Any] = {"description": record.description[:200], "pinning": "enforce"}
    if launch.transport == "stdio":
        entry.update(command=launch.command, args=list(launch.args), env=resolved)
        return entry
    secrets = {v.name for v in launch.variables if v.secret}
    headers = {}
    for key, value in launch.headers.items():
        for name, filled in resolved.items():
            if name not in secrets:
                value = value.replace("${" + name + "}", filled)
        headers[key] = value
    entry.update(transport=launch.transport, url=launch.url, headers=headers)
    return entry
