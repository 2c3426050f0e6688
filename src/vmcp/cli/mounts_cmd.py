"""``vmcp add``, ``remove``, ``import`` and ``export``: the mount table from the command line.

Each change is checked (the mount model and its driver names) before ``servers.toml`` is
written, and applied at once to a gateway running with this home.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from vmcp.cli.common import config_from_context
from vmcp.cli.completion import complete_mount_ids
from vmcp.cli.ops_cmd import config_path_of, live_gateway
from vmcp.cli.output import echo_json, fail
from vmcp.clients import CLIENTS, ClientConfigError, read_config
from vmcp.config import ConfigError, default_config_path, driver_problems, read_table
from vmcp.control.client import ControlClient, NotRunning
from vmcp.control.protocol import ControlError
from vmcp.mcpjson import ExportFormat, export_servers, plan_import, servers_table
from vmcp.repository.mounts import MountTable


def _files(ctx: click.Context) -> tuple[Path, MountTable]:
    source = config_path_of(ctx) or default_config_path()
    return source, MountTable(source.parent / "servers.toml")


def _configured(ctx: click.Context) -> dict[str, Any]:
    """The mounts written in the configuration files, by id (``servers.toml`` wins)."""
    source, table = _files(ctx)
    try:
        return {**read_table(source, "servers"), **table.entries()}
    except ConfigError as exc:
        fail(f"{exc.source}: {'; '.join(exc.problems)}", 2)


def _pairs(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"{option} expects KEY=VALUE, got {pair!r}", 2)
        values[key] = value
    return values


def _apply_live(client: ControlClient | None, ids: list[str], replaced: set[str]) -> dict[str, str]:
    """Mount ``ids`` on the running gateway (remounting ``replaced`` ones); id -> outcome."""
    if client is None:
        return {}
    outcome = {}
    for mount_id in ids:
        try:
            if mount_id in replaced:
                # Not mounted (failed or disabled) is fine: mounting is what matters.
                with contextlib.suppress(ControlError):
                    client.call("unmount", id=mount_id)
            mounted = client.call("mount", id=mount_id)
            outcome[mount_id] = f"{mounted['state']}, {mounted['tools']} tools"
        except ControlError as exc:
            outcome[mount_id] = f"failed: {exc.message}"
        except NotRunning:
            outcome[mount_id] = "failed: the gateway stopped answering"
    return outcome


def _write(ctx: click.Context, entries: dict[str, dict[str, Any]]) -> Path:
    _, table = _files(ctx)
    from vmcp.fileutil import held_lock
    from vmcp.repository.paths import changes_lock

    try:
        with held_lock(changes_lock()):  # not between an install's read and write
            table.put_many(entries)
    except ConfigError as exc:
        fail(f"{exc.source}: {'; '.join(exc.problems)}", 2)
    except OSError as exc:
        fail(f"cannot write {table.path}: {exc}")
    return table.path


def _report_live(live: dict[str, str], as_json: bool) -> None:
    if not as_json:
        for mount_id, state in live.items():
            click.echo(f"  {mount_id}: {state}")
    if any(state.startswith("failed") for state in live.values()):
        raise SystemExit(1)


@click.command("add")
@click.argument("mount_id", metavar="ID")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- COMMAND ARGS...]")
@click.option("--url", help="The server's URL (instead of a command).")
@click.option("--transport", help="stdio for a command; http (default for a URL), sse, ws.")
@click.option("--header", "header_pairs", multiple=True, metavar="KEY=VALUE",
              help="An HTTP header sent to a URL server (repeatable); use ${VAR} for secrets.")
@click.option("--env", "env_pairs", multiple=True, metavar="KEY=VALUE",
              help="An environment variable of the command (repeatable); ${VAR} is read "
                   "from the gateway's environment.")
@click.option("--cwd", help="The working folder of the command.")
@click.option("--description", help="What the server is for.")
@click.option("--replace", is_flag=True, help="Replace a mount of the same id.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def add_command(ctx: click.Context, mount_id: str, command: tuple[str, ...], url: str | None,
                transport: str | None, header_pairs: tuple[str, ...],
                env_pairs: tuple[str, ...], cwd: str | None, description: str | None, replace: bool,
                as_json: bool) -> None:
    """Add a server to the mount table, and mount it on the running gateway.

    \b
    vmcp add time -- uvx mcp-server-time
    vmcp add docs --url https://example.com/mcp --header "Authorization=Bearer ${DOCS_TOKEN}"
    """
    if bool(command) == bool(url):
        fail("give either a command (after --) or --url", 2)
    entry: dict[str, Any] = {"description": description}
    if command:
        entry.update(transport=transport or "stdio", command=command[0], args=list(command[1:]),
                     env=_pairs(env_pairs, "--env"), cwd=cwd)
    else:
        assert url is not None
        guessed = "sse" if url.rstrip("/").endswith("/sse") else "http"
        entry.update(transport=transport or guessed, url=url,
                     headers=_pairs(header_pairs, "--header"))
    if entry["transport"] == "stdio":
        entry.pop("transport")
    configured = _configured(ctx)
    if mount_id in configured and not replace:
        fail(f"a mount {mount_id!r} is already configured (--replace overwrites it)")
    problems = driver_problems({"servers": {mount_id: entry}})
    if problems:
        fail("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems), 2)
    path = _write(ctx, {mount_id: entry})
    live = _apply_live(live_gateway(), [mount_id], {mount_id} & set(configured))
    if as_json:
        echo_json({"id": mount_id, "file": str(path), "live": live.get(mount_id)})
    else:
        click.echo(f"added {mount_id} to {path}"
                   + ("" if live else " (it mounts when the gateway starts)"))
    _report_live(live, as_json)


@click.command("remove")
@click.argument("mount_id", metavar="ID", shell_complete=complete_mount_ids)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def remove_command(ctx: click.Context, mount_id: str, as_json: bool) -> None:
    """Remove a server from the mount table, and unmount it from the running gateway."""
    source, table = _files(ctx)
    from vmcp.fileutil import held_lock
    from vmcp.repository.paths import changes_lock

    with held_lock(changes_lock()):
        removed = table.remove(mount_id)
    if not removed:
        where = (f"; it is defined in {source}: remove its table there"
                 if mount_id in read_table(source, "servers") else "")
        fail(f"no mount {mount_id!r} in {table.path}{where}")
    client = live_gateway()
    unmounted = False
    if client is not None:
        try:
            client.call("unmount", id=mount_id)
            unmounted = True
        except ControlError:
            pass  # not mounted: nothing runs to stop
    if as_json:
        echo_json({"id": mount_id, "file": str(table.path), "unmounted": unmounted})
    else:
        click.echo(f"removed {mount_id} from {table.path}"
                   + (" and unmounted it" if unmounted else ""))


def _import_sources(source: str | None) -> list[tuple[str, Path]]:
    if source is None:
        found = [(c.name, c.config_path(Path.home(), sys.platform)) for c in CLIENTS.values()]
        return [(name, path) for name, path in found if path.exists()]
    if source in CLIENTS:
        return [(source, CLIENTS[source].config_path(Path.home(), sys.platform))]
    path = Path(source)
    if not path.exists():
        fail(f"{source} is neither a known client ({', '.join(CLIENTS)}) nor a file", 2)
    return [(str(path), path)]


@click.command("import")
@click.argument("source", required=False, metavar="[CLIENT|FILE]")
@click.option("--dry-run", is_flag=True, help="Show what would be imported; write nothing.")
@click.option("--replace", is_flag=True, help="Overwrite mounts of the same id.")
@click.option("--keep-secrets", is_flag=True,
              help="Copy secret values in clear (default: ${VAR} references).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def import_command(ctx: click.Context, source: str | None, dry_run: bool, replace: bool,
                   keep_secrets: bool, as_json: bool) -> None:
    """Turn the servers an MCP client already runs into mounts.

    SOURCE is a client (claude-desktop, claude-code, cursor, vscode, windsurf) or a JSON file
    with "mcpServers" (or VS Code's "servers"); without it, every client found is read.
    Secret env values and headers become ${VAR} references the gateway fills in from its
    environment; vmcp's own entries are left out.
    """
    sources = _import_sources(source)
    if not sources:
        fail("no MCP client configuration found; name a FILE")
    configured = _configured(ctx)
    planned: dict[str, dict[str, Any]] = {}
    report: list[dict[str, Any]] = []
    for name, path in sources:
        try:
            servers = servers_table(read_config(path))
        except (ClientConfigError, ValueError) as exc:
            report.append({"source": name, "file": str(path), "error": str(exc)})
            continue
        plan = plan_import(servers, {**configured, **planned}, keep_secrets, replace)
        planned.update(plan.mounts)
        report.append({"source": name, "file": str(path), "mounts": plan.mounts,
                       "renamed": plan.renamed, "skipped": plan.skipped, "notes": plan.notes})
    written = None
    if planned and not dry_run:
        written = str(_write(ctx, planned))
    live = {} if dry_run else _apply_live(live_gateway(), list(planned),
                                          set(planned) & set(configured))
    if as_json:
        echo_json({"dry_run": dry_run, "file": written, "sources": report, "live": live})
    else:
        _print_import(report, dry_run, written)
    _report_live(live, as_json)
    if any(item.get("error") for item in report):
        raise SystemExit(1)


def _print_import(report: list[dict[str, Any]], dry_run: bool, written: str | None) -> None:
    verb = "would import" if dry_run else "imported"
    for item in report:
        click.echo(f"{item['source']} ({item['file']}):")
        if item.get("error"):
            click.echo(f"  error: {item['error']}")
            continue
        for mount_id, mount in item["mounts"].items():
            origin = next((n for n, m in item["renamed"].items() if m == mount_id), None)
            what = mount.get("url") or " ".join([mount["command"], *mount.get("args", [])])
            click.echo(f"  {verb} {mount_id}" + (f" (from {origin!r})" if origin else "")
                       + f": {what}")
        for name, reason in item["skipped"].items():
            click.echo(f"  skipped {name}: {reason}")
        for note in item["notes"]:
            click.echo(f"  note: {note}")
        if not item["mounts"] and not item["skipped"]:
            click.echo("  no servers")
    if written:
        click.echo(f"written to {written}")


@click.command("export")
@click.option("--format", "style", type=click.Choice(["mcp-json", "vscode"]),
              default="mcp-json", show_default=True,
              help='mcp-json: {"mcpServers": ...} (Claude, Cursor, Windsurf); '
                   'vscode: {"servers": ...}.')
@click.pass_context
def export_command(ctx: click.Context, style: ExportFormat) -> None:
    """Print the enabled mounts as an MCP client's server configuration (JSON)."""
    config, _ = config_from_context(ctx)
    enabled = {k: m for k, m in config.servers.items() if m.enabled}
    document, left_out = export_servers(enabled, style)
    for mount_id, reason in left_out.items():
        click.echo(f"note: {mount_id} left out: {reason}", err=True)
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))
