"""Adds ``vmcp auth`` (sign in to OAuth-protected backends) to the command line."""

from __future__ import annotations

import click

from vmcp.hookspecs import hookimpl


@hookimpl
def vmcp_register_commands(cli: click.Group) -> None:
    """Register ``vmcp auth``."""
    from vmcp_transport_http.oauth.cli import auth_group

    cli.add_command(auth_group)
