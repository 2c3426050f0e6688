"""``vmcp client add|list|remove``: write vmcp into an MCP client's own configuration file."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from vmcp.bridge import BridgeError, running_gateway
from vmcp.cli.completion import complete_persona_names
from vmcp.cli.output import echo_json, fail, table
from vmcp.clients import (
    CLIENTS,
    DEFAULT_NAME,
    ClientConfigError,
    KnownClient,
    add_entry,
    build_entry,
    remove_entry,
    vmcp_entries,
)
from vmcp.config import vmcp_home
from vmcp.persona import PersonaError, PersonaStore

_CLIENT = click.Choice(sorted(CLIENTS))


def _path(client: KnownClient) -> Path:
    return client.config_path(Path.home(), sys.platform)


@click.group("client")
def client_group() -> None:
    """Connect MCP clients (Claude Desktop, Claude Code, Cursor, VS Code, Windsurf) to vmcp."""


@client_group.command("add")
@click.argument("client_name", metavar="CLIENT", type=_CLIENT)
@click.option("--name", default=DEFAULT_NAME, show_default=True,
              help="The server's name in the client's configuration.")
@click.option("--persona", shell_complete=complete_persona_names,
              help="Start the gateway with this persona.")
@click.option("--print", "print_only", is_flag=True,
              help="Print the entry instead of writing the client's file.")
@click.option("--force", is_flag=True, help="Replace an entry of the same name.")
@click.option("--spawn", is_flag=True,
              help="Let the client start a gateway of its own even when one runs as a service.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the outcome as JSON (docs/clients.md: JSON output).")
@click.pass_context
def add_command(ctx: click.Context, client_name: str, name: str, persona: str | None,
                print_only: bool, force: bool, spawn: bool, as_json: bool) -> None:
    """Add a server entry that runs this vmcp to CLIENT's configuration file.

    When a gateway runs with this home as a service (`vmcp start -d`), the entry runs
    `vmcp connect`, so every client shares that gateway (as --persona, when given);
    otherwise (or with --spawn) the client starts a gateway of its own with `vmcp start`.
    """
    client = CLIENTS[client_name]
    if persona:
        try:
            PersonaStore.default().load(persona)
        except PersonaError as exc:
            fail(str(exc))
    shared = False
    if not spawn:
        try:
            shared = bool(running_gateway())
        except BridgeError:
            shared = False
    raw_config = (ctx.find_root().obj or {}).get("config_path")
    entry = build_entry(client, vmcp_home(), persona, Path(raw_config) if raw_config else None,
                        connect=shared)
    if print_only:
        echo_json({client.key: {name: entry}})
        return
    path = _path(client)
    try:
        backup = add_entry(client, path, name, entry, force)
    except ClientConfigError as exc:
        fail(str(exc))
    if as_json:
        echo_json({"client": client.name, "file": str(path), "name": name,
                   "backup": str(backup) if backup else None, "connect": shared,
                   "entry": entry})
        return
    if shared:
        click.echo("the entry relays to the gateway running with this home (vmcp connect, "
                   "over its control socket); --spawn gives the client a gateway of its own")
    click.echo(f"added {name!r} to {path}" + (f" (old file kept as {backup})" if backup else ""))
    click.echo(f"restart {client.title} to use it")


@client_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(as_json: bool) -> None:
    """Each known client: its configuration file and the vmcp entries in it."""
    report = []
    for client in CLIENTS.values():
        path = _path(client)
        try:
            entries = vmcp_entries(client, path)
            problem = None
        except ClientConfigError as exc:
            entries, problem = {}, str(exc)
        report.append({"client": client.name, "path": str(path), "exists": path.exists(),
                       "entries": entries, "error": problem})
    if as_json:
        echo_json(report)
        return
    rows = []
    for item in report:
        status = "unreadable" if item["error"] else (
            "configured" if item["entries"] else "present" if item["exists"] else "missing")
        commands = "; ".join(
            f"{n}: {shlex.join([e['command'], *map(str, e.get('args') or [])])}"
            for n, e in item["entries"].items())
        rows.append([item["client"], status, item["path"], commands or None])
    table(["CLIENT", "STATE", "CONFIG", "VMCP ENTRIES"], rows)


@client_group.command("remove")
@click.argument("client_name", metavar="CLIENT", type=_CLIENT)
@click.option("--name", default=DEFAULT_NAME, show_default=True,
              help="The server's name in the client's configuration.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def remove_command(client_name: str, name: str, as_json: bool) -> None:
    """Remove the server entry NAME from CLIENT's configuration file."""
    client = CLIENTS[client_name]
    path = _path(client)
    try:
        backup = remove_entry(client, path, name)
    except ClientConfigError as exc:
        fail(str(exc))
    if as_json:
        echo_json({"client": client.name, "file": str(path), "name": name,
                   "backup": str(backup)})
    else:
        click.echo(f"removed {name!r} from {path} (old file kept as {backup})")
