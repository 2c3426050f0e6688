"""Adds ``vmcp auth`` (sign in to OAuth-protected backends) to the command line."""

from __future__ import annotations

import click

from vmcp.cli.lazy import LazyGroup
from vmcp.hookspecs import hookimpl


@hookimpl
def vmcp_register_commands(cli: click.Group) -> None:
    """Register ``vmcp auth``, imported only when it is used (it loads the MCP SDK's OAuth
    client, aiohttp and authlib: most of a second that ``vmcp start`` has no use for)."""
    if isinstance(cli, LazyGroup):
        cli.add_lazy_command("auth", "vmcp_transport_http.oauth.cli:auth_group")
        return
    from vmcp_transport_http.oauth.cli import auth_group

    cli.add_command(auth_group)
