"""What the repository commands share: opening the stores, reading ``--env``, failing cleanly."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import click

from vmcp.cli.common import config_from_context
from vmcp.config import default_config_path
from vmcp.fileutil import held_lock
from vmcp.repository import paths
from vmcp.repository.index import SearchIndex
from vmcp.repository.installed import Variable
from vmcp.repository.manager import ServerManager
from vmcp.repository.mount_entry import missing_variables
from vmcp.repository.sources import SourceStore


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def open_index() -> SearchIndex:
    """The search index under ``$VMCP_HOME``."""
    return SearchIndex(paths.index_file())


def open_sources(ctx: click.Context) -> SourceStore:
    """The configured sources (``repositories.toml`` plus those declared in ``vmcp.toml``)."""
    config, _ = config_from_context(ctx)
    return SourceStore(paths.repositories_file(), config.repositories)


def open_manager(ctx: click.Context, changes: bool = True) -> ServerManager:
    """The install manager, with the mount table beside the configuration file in use.

    A command that ``changes`` installed servers or mounts holds the changes lock until it
    ends: two installs at once would otherwise build in the same folder and each write the
    mount table over the other's change.
    """
    if changes:
        ctx.with_resource(held_lock(paths.changes_lock(), on_wait=lambda: click.echo(
            "waiting for another vmcp command that is changing installed servers...",
            err=True)))
    raw = (ctx.find_root().obj or {}).get("config_path")
    return ServerManager.beside(Path(raw) if raw else default_config_path())


def parse_env(pairs: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` options as a dict (exits with a message on a malformed one)."""
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--env expects KEY=VALUE, got {pair!r}", 2)
        values[key] = value
    return values


def gather_values(
    variables: list[Variable],
    values: dict[str, str],
    interactive: bool,
    existing: dict[str, str] | None = None,
) -> dict[str, str]:
    """Complete ``values`` for the required variables: prompting when ``interactive``.

    Secret variables are never asked for nor stored; the user is told to export them.
    """
    for var in variables:
        if not var.secret or var.value is not None:
            continue
        if var.name in values:
            click.echo(f"note: {var.name} is secret and is not stored; the mount reads "
                       f"${{{var.name}}} from the gateway's environment", err=True)
            del values[var.name]
        elif var.name not in os.environ:
            need = "needs" if var.required else "may use"
            click.echo(f"note: the server {need} the secret {var.name}; export it before "
                       "starting the gateway (it is never written to disk)", err=True)
    missing = missing_variables(variables, values, existing)
    if missing and not interactive:
        fail("required variables without a value: "
             + ", ".join(v.name for v in missing) + " (pass --env NAME=VALUE)")
    for var in missing:
        label = f"{var.name} ({var.description})" if var.description else var.name
        values[var.name] = click.prompt(label)
    return values


def interactive(yes: bool) -> bool:
    """True when prompts may be shown: not ``--yes`` and a terminal on standard input."""
    return not yes and sys.stdin.isatty()
