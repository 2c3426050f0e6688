"""``vmcp auth``: sign in to, inspect and sign out of OAuth-protected backends."""

from __future__ import annotations

import asyncio
import webbrowser

import aiohttp
import click

from vmcp.cli.common import config_from_context
from vmcp.cli.output import echo_json, fail, table
from vmcp.config import MountConfig
from vmcp.persona import NAME_RE
from vmcp_transport_http.oauth.client import TokenError, revoke
from vmcp_transport_http.oauth.login import SignInError, sign_in
from vmcp_transport_http.oauth.state import describe, sign_ins
from vmcp_transport_http.oauth.store import Grant, GrantStore


@click.group("auth")
def auth_group() -> None:
    """Sign in to OAuth-protected backends (mounts with an [servers.X.oauth] table).

    Grants are kept per mount and per persona (or one service grant per mount), encrypted
    under $VMCP_HOME/secrets; a running gateway uses a new grant on its next connection.
    """


def _oauth_mount(ctx: click.Context, mount_id: str) -> MountConfig:
    config, _ = config_from_context(ctx)
    mount = config.servers.get(mount_id)
    if mount is None:
        fail(f"no mount named {mount_id!r}")
    if mount.oauth is None:
        fail(f"mount {mount_id!r} has no [servers.{mount_id}.oauth] table")
    return mount


def _owner(mount: MountConfig, persona: str | None) -> str | None:
    assert mount.oauth is not None
    if persona is None:
        return None
    if mount.oauth.grant == "token_exchange":
        fail(f"mount {mount.id!r} exchanges each caller's own token: personas hold no "
             "grants for it (sign in without --persona for its service grant)")
    if mount.oauth.grants == "shared":
        fail(f"mount {mount.id!r} uses one shared grant: sign in without --persona")
    if not NAME_RE.fullmatch(persona):
        fail(f"invalid persona name {persona!r}")
    return persona


@auth_group.command("login")
@click.argument("mount_id", metavar="MOUNT")
@click.option("--persona", "-p", help="Sign in for this persona (default: the mount's "
              "service grant, which also serves the mount's lists).")
@click.option("--scope", help="Extra scope to ask for (e.g. after an insufficient_scope "
              "error), added to what the grant had.")
@click.option("--no-browser", is_flag=True, help="Print the sign-in URL, do not open it.")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Seconds to wait for the sign-in to finish.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the new grant's state as JSON (the sign-in URL goes to stderr).")
@click.pass_context
def login_command(ctx: click.Context, mount_id: str, persona: str | None, scope: str | None,
                  no_browser: bool, timeout: float, as_json: bool) -> None:
    """Sign in to MOUNT: open the authorization URL, receive the redirect on 127.0.0.1."""
    mount = _oauth_mount(ctx, mount_id)
    owner = _owner(mount, persona)

    def show(url: str) -> None:
        click.echo("Open this URL to sign in:", err=True)
        click.echo(url, err=as_json)
        if not no_browser:
            webbrowser.open(url)

    try:
        grant = asyncio.run(sign_in(mount, owner, GrantStore(), show, scope, timeout))
    except SignInError as exc:
        fail(f"mount {mount_id!r}: {exc}")
    state = describe(grant)
    if as_json:
        echo_json({"mount": mount_id, "persona": owner, **state})
        return
    click.echo(f"signed in to {mount_id} ({_who(owner)}): {state['state']}", err=True)


@auth_group.command("status")
@click.argument("mount_id", metavar="MOUNT", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status_command(ctx: click.Context, mount_id: str | None, as_json: bool) -> None:
    """Who is signed in to which OAuth mount, and until when (tokens are never shown)."""
    config, _ = config_from_context(ctx)
    store = GrantStore()
    mounts = [m for m in config.servers.values()
              if m.oauth is not None and (mount_id is None or m.id == mount_id)]
    if mount_id is not None and not mounts:
        fail(f"no OAuth mount named {mount_id!r}")
    rows = [{"mount": mount.id, **row} for mount in mounts for row in sign_ins(mount, store)]
    if as_json:
        echo_json(rows)
        return
    table(["MOUNT", "PERSONA", "STATE", "EXPIRES", "SCOPE"],
          [[r["mount"], r["persona"] or "(service)", r["state"], r.get("expires"),
            r.get("scope")] for r in rows])


@auth_group.command("logout")
@click.argument("mount_id", metavar="MOUNT")
@click.option("--persona", "-p", help="Sign this persona out (default: the service grant).")
@click.option("--json", "as_json", is_flag=True, help='Print {"mount", "persona", '
              '"signed_out": true}.')
@click.pass_context
def logout_command(ctx: click.Context, mount_id: str, persona: str | None,
                   as_json: bool) -> None:
    """Revoke and forget a grant of MOUNT."""
    mount = _oauth_mount(ctx, mount_id)
    owner = _owner(mount, persona)
    store = GrantStore()
    grant = store.load(mount.id, owner)
    if grant is not None:
        try:
            asyncio.run(_revoke(grant))
        except TokenError as exc:
            click.echo(f"warning: the server did not revoke the grant: {exc}", err=True)
    if not store.delete(mount.id, owner):
        fail(f"{_who(owner)} holds no grant for {mount_id!r}")
    if as_json:
        echo_json({"mount": mount_id, "persona": owner, "signed_out": True})
        return
    click.echo(f"signed out of {mount_id} ({_who(owner)})", err=True)


async def _revoke(grant: Grant) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        await revoke(http, grant)


def _who(owner: str | None) -> str:
    return f"persona {owner}" if owner is not None else "service grant"
