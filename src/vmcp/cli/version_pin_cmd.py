"""``vmcp pin`` and ``vmcp unpin``: hold a mount of an installed server at one version."""

from __future__ import annotations

import click

from vmcp.cli.completion import complete_mount_ids
from vmcp.cli.output import echo_json
from vmcp.cli.repo_support import fail, open_manager
from vmcp.config import ConfigError
from vmcp.repository.errors import InstallError

_json_option = click.option("--json", "as_json", is_flag=True,
                            help="Print the outcome as JSON (docs/installer.md: JSON output).")


def _report(mount_id: str, name: str, version: str, pinned: bool, as_json: bool) -> None:
    if as_json:
        echo_json({"id": mount_id, "name": name, "version": version, "pinned": pinned})
    elif pinned:
        click.echo(f"{mount_id} is pinned to {name} {version}; updates and rollbacks leave "
                   "it there")
    else:
        click.echo(f"{mount_id} follows {name}'s current version again ({version})")


@click.command("pin")
@click.argument("mount_id", shell_complete=complete_mount_ids)
@click.argument("version", required=False)
@_json_option
@click.pass_context
def pin_command(ctx: click.Context, mount_id: str, version: str | None, as_json: bool) -> None:
    """Hold MOUNT_ID at VERSION of its installed server (the version it runs by default):
    `vmcp update`, `rollback` and installs of other versions leave it there.

    (Pinning tool definitions is another thing: see `vmcp approve`.)
    """
    manager = open_manager(ctx)
    try:
        name, held = manager.pin(mount_id, version)
    except (InstallError, ConfigError) as exc:
        fail(str(exc))
    _report(mount_id, name, held, True, as_json)


@click.command("unpin")
@click.argument("mount_id", shell_complete=complete_mount_ids)
@_json_option
@click.pass_context
def unpin_command(ctx: click.Context, mount_id: str, as_json: bool) -> None:
    """Let MOUNT_ID follow its installed server's current version again (switching it to
    that version now)."""
    manager = open_manager(ctx)
    try:
        name, current = manager.unpin(mount_id)
    except (InstallError, ConfigError) as exc:
        fail(str(exc))
    _report(mount_id, name, current, False, as_json)
