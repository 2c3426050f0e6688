"""``vmcp config``: show the effective configuration and where it comes from."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vmcp import tomlwrite
from vmcp.cli.common import config_from_context
from vmcp.config import default_config_path

MASK = "***"
_SECRET_TABLES = ("env", "headers")


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@click.option("--show-secrets", is_flag=True,
              help="Print env and header values and OAuth client secrets unmasked.")
@click.pass_context
def show_command(ctx: click.Context, as_json: bool, show_secrets: bool) -> None:
    """Print the effective configuration: built-in defaults overlaid with your file."""
    config, _ = config_from_context(ctx)
    data = config.model_dump(mode="json")
    for server in data["servers"].values():
        del server["id"]  # the table key is the id
        if not show_secrets:
            for table in _SECRET_TABLES:
                server[table] = dict.fromkeys(server[table], MASK)
            oauth = server.get("oauth")
            if oauth and oauth.get("client_secret") is not None:
                oauth["client_secret"] = MASK
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(tomlwrite.dumps(data), nl=False)


@config_group.command("path")
@click.pass_context
def path_command(ctx: click.Context) -> None:
    """Print the files the configuration is read from, and whether each exists."""
    raw = (ctx.find_root().obj or {}).get("config_path")
    config_file = Path(raw) if raw else default_config_path()
    click.echo(f"{config_file} ({_state(config_file, 'built-in defaults apply')})")
    servers_file = config_file.parent / "servers.toml"
    click.echo(f"{servers_file} ({_state(servers_file, 'optional')})")


def _state(path: Path, when_missing: str) -> str:
    return "exists" if path.is_file() else f"missing; {when_missing}"


@config_group.command("reference")
def reference_command() -> None:
    """Print the reference of every configuration key (Markdown; docs/configuration.md)."""
    from vmcp.configdoc import render_reference

    click.echo(render_reference(), nl=False)
