"""Showing changed tool definitions, and re-pinning them after ``vmcp update``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import click

from vmcp.cli.common import config_from_context
from vmcp.cli.ops_cmd import control_call, live_gateway
from vmcp.config import vmcp_home
from vmcp.gateway.pinning import PinStore
from vmcp.logs import config_secrets, configure_logging


def echo_changes(mount_id: str, pinning: dict[str, Any], err: bool = False) -> None:
    """Print each changed tool of a mount's pinning report, field by field (on stderr
    with ``err``)."""
    for change in pinning["changes"]:
        click.echo(f"  {change['tool']} {change['state']}: changed {', '.join(change['fields'])}"
                   f" (vmcp approve {mount_id} {change['tool']})", err=err)
        for field in change["fields"]:
            pinned, current = (change[side] or {} for side in ("pinned", "current"))
            click.echo(f"    {field} pinned:  {json.dumps(pinned.get(field))}", err=err)
            click.echo(f"    {field} current: {json.dumps(current.get(field))}", err=err)


def approve(mount_id: str, tool: str | None = None) -> list[str]:
    """Pin the changed definitions of a mount's tools (or of one), through the running
    gateway when there is one (it holds the pins in memory); the names pinned."""
    client = live_gateway()
    if client is not None:
        names: list[str] = control_call(client, "approve", id=mount_id, tool=tool)
        return names
    return PinStore(vmcp_home() / "pins").approve(mount_id, tool)


def review_update(ctx: click.Context, mount_ids: Iterable[str], ask: bool,
                  err: bool = False) -> None:
    """Start each updated mount briefly, show how its tools differ from their pins, and
    re-pin them if the user agrees (``ask``); else they stay pending for ``vmcp approve``.

    Tools never seen before are pinned as they are. With ``err`` it all goes to stderr.
    """
    from vmcp.cli.gateway_cmd import inspect_mount  # the gateway only once it is needed

    config, _ = config_from_context(ctx)
    configure_logging(config.logging, "error", config_secrets(config))
    for mount_id in mount_ids:
        try:
            info = asyncio.run(inspect_mount(config, mount_id))
        except click.ClickException as exc:
            click.echo(f"{mount_id}: its tools could not be checked ({exc.message}); they "
                       "are compared with their pins when the gateway first sees them", err=err)
            continue
        pinning = info["pinning"]
        changes = pinning["changes"]
        if not changes:
            click.echo(f"{mount_id}: no pinned tool definition changed "
                       f"({pinning['pinned']} pinned, pinning {pinning['mode']})", err=err)
            continue
        click.echo(f"{mount_id}: {len(changes)} tool definition(s) changed since pinned:",
                   err=err)
        echo_changes(mount_id, pinning, err)
        if ask and click.confirm(f"Pin the new definitions of {mount_id}'s changed tools?",
                                 default=False, err=err):
            for name in approve(mount_id):
                click.echo(f"approved {mount_id} {name}", err=err)
        else:
            click.echo(f"{mount_id}: the changed tools stay {changes[0]['state']} until "
                       f"`vmcp approve {mount_id}`", err=err)
