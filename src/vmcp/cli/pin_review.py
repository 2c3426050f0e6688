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


def echo_changes(mount_id: str, pinning: dict[str, Any]) -> None:
    """Print each changed tool of a mount's pinning report, field by field."""
    for change in pinning["changes"]:
        click.echo(f"  {change['tool']} {change['state']}: changed {', '.join(change['fields'])}"
                   f" (vmcp approve {mount_id} {change['tool']})")
        for field in change["fields"]:
            click.echo(f"    {field} pinned:  {json.dumps((change['pinned'] or {}).get(field))}")
            click.echo(f"    {field} current: {json.dumps((change['current'] or {}).get(field))}")


def approve(mount_id: str, tool: str | None = None) -> list[str]:
    """Pin the changed definitions of a mount's tools (or of one), through the running
    gateway when there is one (it holds the pins in memory); the names pinned."""
    client = live_gateway()
    if client is not None:
        names: list[str] = control_call(client, "approve", id=mount_id, tool=tool)
        return names
    return PinStore(vmcp_home() / "pins").approve(mount_id, tool)


def review_update(ctx: click.Context, mount_ids: Iterable[str], ask: bool) -> None:
    """Start each updated mount briefly, show how its tools differ from their pins, and
    re-pin them if the user agrees (``ask``); else they stay pending for ``vmcp approve``.

    Tools never seen before are pinned as they are.
    """
    from vmcp.cli.gateway_cmd import inspect_mount  # the gateway only once it is needed

    config, _ = config_from_context(ctx)
    configure_logging(config.logging, "error", config_secrets(config))
    for mount_id in mount_ids:
        try:
            info = asyncio.run(inspect_mount(config, mount_id))
        except click.ClickException as exc:
            click.echo(f"{mount_id}: its tools could not be checked ({exc.message}); they "
                       "are compared with their pins when the gateway first sees them")
            continue
        pinning = info["pinning"]
        changes = pinning["changes"]
        if not changes:
            click.echo(f"{mount_id}: no pinned tool definition changed "
                       f"({pinning['pinned']} pinned, pinning {pinning['mode']})")
            continue
        click.echo(f"{mount_id}: {len(changes)} tool definition(s) changed since pinned:")
        echo_changes(mount_id, pinning)
        if ask and click.confirm(f"Pin the new definitions of {mount_id}'s changed tools?",
                                 default=False):
            for name in approve(mount_id):
                click.echo(f"approved {mount_id} {name}")
        else:
            click.echo(f"{mount_id}: the changed tools stay {changes[0]['state']} until "
                       f"`vmcp approve {mount_id}`")
