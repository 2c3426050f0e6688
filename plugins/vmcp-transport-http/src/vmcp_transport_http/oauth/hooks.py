"""Adds ``vmcp auth`` (sign in to OAuth-protected backends) to the command line, and tells
``vmcp list``, ``info`` and ``status`` who is signed in to each OAuth mount."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from vmcp.cli.lazy import LazyGroup
from vmcp.hookspecs import hookimpl

if TYPE_CHECKING:
    from vmcp.config import MountConfig


@hookimpl
def vmcp_register_commands(cli: click.Group) -> None:
    """Register ``vmcp auth``, imported only when it is used (it loads the MCP SDK's OAuth
    client, aiohttp and authlib: most of a second that ``vmcp start`` has no use for)."""
    if isinstance(cli, LazyGroup):
        cli.add_lazy_command("auth", "vmcp_transport_http.oauth.cli:auth_group")
        return
    from vmcp_transport_http.oauth.cli import auth_group

    cli.add_command(auth_group)


@hookimpl
def vmcp_sign_ins(mount: MountConfig) -> list[dict[str, Any]] | None:
    """The sign-in state of each grant owner of an OAuth mount."""
    if mount.oauth is None:
        return None
    from vmcp_transport_http.oauth.state import sign_ins
    from vmcp_transport_http.oauth.store import GrantStore

    return sign_ins(mount, GrantStore())
