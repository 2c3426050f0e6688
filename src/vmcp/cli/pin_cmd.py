"""``vmcp approve``: accept the changed definitions of a mount's pinned tools."""

from __future__ import annotations

import click

from vmcp.cli.completion import complete_mount_ids
from vmcp.cli.output import echo_json, fail
from vmcp.cli.pin_review import approve


@click.command("approve")
@click.argument("mount_id", shell_complete=complete_mount_ids)
@click.argument("tool", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print {\"id\", \"approved\": [tools]}.")
def approve_command(mount_id: str, tool: str | None, as_json: bool) -> None:
    """Pin the changed definitions of MOUNT_ID's tools (or only TOOL, the backend's name), so
    tools withheld for a change are shown again. `vmcp info MOUNT_ID` shows the changes."""
    names = approve(mount_id, tool)
    if not names:
        fail(f"no changed tool {'named ' + repr(tool) + ' ' if tool else ''}"
             f"waits for approval on {mount_id!r}")
    if as_json:
        echo_json({"id": mount_id, "approved": names})
        return
    for name in names:
        click.echo(f"approved {mount_id} {name}")
