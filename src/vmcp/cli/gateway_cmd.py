"""``vmcp start``, ``vmcp list`` and ``vmcp info``: run the gateway and look at its mounts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from vmcp.auth.base import Principal
from vmcp.cli.common import config_from_context
from vmcp.config import ConfigError, MountConfig, VmcpConfig
from vmcp.gateway.gateway import Gateway
from vmcp.gateway.runner import serve
from vmcp.logs import configure_logging
from vmcp.persona import PersonaError, PersonaStore
from vmcp.plugins import PluginError, load_driver


@click.command("start")
@click.option(
    "--transport", "-t", "transports", multiple=True,
    help="Front transport to serve (repeatable; default: gateway.fronts, i.e. stdio).",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--persona", help="The stdio client's persona (default: gateway.default_persona).")
@click.pass_context
def start_command(
    ctx: click.Context, transports: tuple[str, ...], log_level: str | None, persona: str | None
) -> None:
    """Run the gateway in the foreground, serving MCP clients (stdio by default)."""
    config, _ = config_from_context(ctx)
    for name in dict.fromkeys(p for p in (persona, config.gateway.default_persona) if p):
        try:
            PersonaStore.default().load(name)
        except PersonaError as exc:
            raise click.ClickException(str(exc)) from exc
    fronts = list(dict.fromkeys(transports or config.gateway.fronts))
    for name in fronts:
        try:
            load_driver("transports", name)
        except PluginError as exc:
            raise click.ClickException(str(exc)) from exc
    configure_logging(config.logging, log_level)
    try:
        asyncio.run(serve(config, fronts, Principal("stdio", persona) if persona else None))
    except ConfigError as exc:  # a front refused its settings (e.g. an unsafe bind)
        for problem in exc.problems:
            click.echo(f"error: {exc.source}: {problem}", err=True)
        raise SystemExit(2) from exc
    except OSError as exc:  # a front could not listen
        raise click.ClickException(str(exc)) from exc


def _describe_mount(mount: MountConfig) -> str:
    if mount.transport == "stdio":
        return " ".join([mount.command or "", *mount.args])
    return mount.url or ""


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List the configured mounts."""
    config, _ = config_from_context(ctx)
    mounts = list(config.servers.values())
    if as_json:
        click.echo(json.dumps([
            {"id": m.id, "transport": m.transport, "target": _describe_mount(m),
             "prefix": m.exposed_prefix, "enabled": m.enabled, "replicas": m.replicas}
            for m in mounts], indent=2))
        return
    if not mounts:
        click.echo("no servers configured")
        return
    width = max(len(m.id) for m in mounts)
    for m in mounts:
        state = "" if m.enabled else "  (disabled)"
        click.echo(f"{m.id:<{width}}  {m.transport:<6} {_describe_mount(m)}{state}")


async def _inspect(config: VmcpConfig, mount_id: str) -> dict[str, Any]:
    only = config.model_copy(update={"servers": {mount_id: config.servers[mount_id]}})
    gateway = Gateway(only)
    try:
        await gateway.start_mounts()
        mount = gateway.mounts.get(mount_id)
        if mount is None or mount.state != "up":
            reason = mount.error if mount is not None else "could not be created"
            raise click.ClickException(f"mount {mount_id!r} did not start: {reason}")
        upstream = mount.primary
        assert upstream is not None
        return {
            "id": mount_id,
            "server": upstream.server_info,
            "protocolVersion": upstream.protocol_version,
            "capabilities": upstream.capabilities,
            "instructions": upstream.instructions,
            "health": mount.describe(),
            **mount.catalog,
        }
    finally:
        await gateway.stop()


@click.command("info")
@click.argument("mount_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def info_command(ctx: click.Context, mount_id: str, as_json: bool) -> None:
    """Start one mount briefly and show what its server offers."""
    config, _ = config_from_context(ctx)
    if mount_id not in config.servers:
        known = ", ".join(config.servers) or "none"
        raise click.ClickException(f"unknown mount {mount_id!r} (configured: {known})")
    configure_logging(config.logging, "error")
    info = asyncio.run(_inspect(config, mount_id))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    server = info["server"]
    click.echo(f"{mount_id}: {server.get('name', '?')} {server.get('version', '')}".rstrip())
    click.echo(f"protocol: {info['protocolVersion']}")
    for replica in info["health"]["replicas"]:
        click.echo(f"replica {replica['id']}: {replica['state']}, "
                   f"{'healthy' if replica['healthy'] else 'unhealthy'}, "
                   f"circuit {replica['circuit']}")
    for kind, key in (("tools", "name"), ("prompts", "name"), ("resources", "uri"),
                      ("resource_templates", "uriTemplate")):
        items = info[kind]
        click.echo(f"{kind.replace('_', ' ')} ({len(items)}):")
        for item in items:
            description = (item.get("description") or "").splitlines()
            suffix = f"  {description[0]}" if description else ""
            click.echo(f"  {item.get(key)}{suffix}")
