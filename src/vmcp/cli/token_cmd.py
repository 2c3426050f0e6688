"""``vmcp token``: bearer tokens for the ``token`` auth driver (create, list, revoke)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from vmcp.auth.tokens import TokenStore, TokenStoreError, parse_duration
from vmcp.cli.completion import complete_persona_names
from vmcp.cli.output import table
from vmcp.persona import PersonaError, PersonaStore


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group("token")
def token_group() -> None:
    """Bearer tokens for remote clients (with [auth] driver = "token").

    A token grants one persona. It is shown once, when created; vmcp keeps only its hash
    ($VMCP_HOME/config/tokens.json). Revoking takes effect at once, also on a running gateway.
    """


@token_group.command("create")
@click.option("--persona", "-p", required=True, shell_complete=complete_persona_names,
              help="The persona the token grants.")
@click.option("--expires", default="90d", show_default=True,
              help="Lifetime: e.g. 30d, 12h, 45m, 2w, or never.")
@click.option("--name", "label", default="", help="A label to recognise the token by.")
def create_command(persona: str, expires: str, label: str) -> None:
    """Create a token for PERSONA and print it (only this once)."""
    try:
        lifetime = parse_duration(expires)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from exc
    try:
        PersonaStore.default().load(persona)
        record, token = TokenStore.default().create(persona, lifetime, label)
    except (PersonaError, TokenStoreError) as exc:
        raise _fail(exc) from exc
    click.echo(token)
    until = record.expires.isoformat() if record.expires else "never"
    click.echo(f"token {record.id} for persona {persona}, expires {until}. "
               "Store it now: it cannot be shown again.", err=True)


@token_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(as_json: bool) -> None:
    """List tokens (never the tokens themselves)."""
    try:
        records = TokenStore.default().load()
    except TokenStoreError as exc:
        raise _fail(exc) from exc
    now = datetime.now(UTC)
    if as_json:
        click.echo(json.dumps(
            [{k: v for k, v in r.to_json().items() if k != "sha256"} | {"expired": r.expired(now)}
             for r in records], indent=2))
        return
    if not records:
        click.echo("no tokens (vmcp token create --persona NAME)")
        return
    table(["ID", "PERSONA", "EXPIRES", "STATE", "NAME"],
          [[r.id, r.persona, r.expires.isoformat() if r.expires else "never",
            "expired" if r.expired(now) else "valid", r.name or None] for r in records])


@token_group.command("revoke")
@click.argument("token_id")
def revoke_command(token_id: str) -> None:
    """Revoke the token with id TOKEN_ID (see vmcp token list)."""
    try:
        record = TokenStore.default().revoke(token_id)
    except TokenStoreError as exc:
        raise _fail(exc) from exc
    click.echo(f"revoked token {record.id} (persona {record.persona})")
