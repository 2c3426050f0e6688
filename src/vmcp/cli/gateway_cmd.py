"""``vmcp start``, ``vmcp list`` and ``vmcp info``: run the gateway and look at its mounts."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, NoReturn

import click

from vmcp import eventloop
from vmcp.auth.base import Principal
from vmcp.cli.common import config_from_context
from vmcp.cli.completion import complete_mount_ids, complete_persona_names
from vmcp.cli.ops_cmd import control_call, live_gateway, run_options, start_detached
from vmcp.cli.output import echo_json, fail, sign_in_summary, table
from vmcp.config import ConfigError, VmcpConfig
from vmcp.control.instance import AlreadyRunning
from vmcp.control.ops import mount_info, mount_row
from vmcp.control.runtime import effective_logging
from vmcp.gateway.gateway import Gateway
from vmcp.gateway.runner import serve
from vmcp.logs import config_secrets, configure_logging
from vmcp.plugins import PluginError, load_driver


@click.command("start")
@click.option(
    "--transport", "-t", "transports", multiple=True,
    help="Front transport to serve (repeatable; default: gateway.fronts, i.e. stdio).",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--persona", shell_complete=complete_persona_names,
              help="The stdio client's persona (default: gateway.default_persona).")
@click.option("--detach", "-d", is_flag=True,
              help="Run in the background (network fronts only); see vmcp status and stop.")
@click.option("--host", help="Address the network front binds (over [transports.<name>] host).")
@click.option("--port", type=click.IntRange(0, 65535),
              help="Port of the network front, 0 for a free one (over [transports.<name>] port).")
@click.option("--workers", "-w", type=click.IntRange(1, 64),
              help="Gateway processes sharing the network fronts' ports (over [gateway] "
                   "workers; default 1).")
@click.option("--ready-fd", type=int, hidden=True)
@click.option("--worker", "worker_arg", hidden=True)
@click.pass_context
def start_command(
    ctx: click.Context, transports: tuple[str, ...], log_level: str | None, persona: str | None,
    detach: bool, host: str | None, port: int | None, workers: int | None,
    ready_fd: int | None, worker_arg: str | None,
) -> None:
    """Run the gateway in the foreground, serving MCP clients (stdio by default), or in the
    background with -d."""
    config, _ = config_from_context(ctx)
    for name in dict.fromkeys(p for p in (persona, config.gateway.default_persona) if p):
        from vmcp.persona import PersonaError, PersonaStore

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
    overrides = _front_overrides(fronts, host, port)
    count = workers or config.gateway.workers
    supervise = count > 1 and worker_arg is None
    # The workers' code is imported only where there are workers.
    if supervise:
        from vmcp.control.workers import refuse_stdio

        try:
            refuse_stdio(fronts, count)
        except ConfigError as exc:
            _config_failure(exc)
    if detach:
        start_args = [arg for key, value in (("--host", host), ("--port", port),
                                             ("--workers", workers))
                      if value is not None for arg in (key, str(value))]
        start_detached(ctx, config, fronts, log_level, start_args)
        return
    options = replace(run_options(ctx, config, log_level, ready_fd), front_overrides=overrides)
    if worker_arg is not None:
        from vmcp.control.workers import WorkerRole

        role = WorkerRole.from_arg(worker_arg)
        options = replace(options, detached=False, log_file=role.log_file,
                          front_overrides=role.fronts, worker=role)
    configure_logging(effective_logging(config, options), log_level, config_secrets(config))
    try:
        if supervise:
            from vmcp.control.workers import Supervisor, SupervisorOptions

            raise SystemExit(eventloop.run(Supervisor(config, SupervisorOptions(
                count, fronts, options.config_path, log_level, ready_fd, options.log_file,
                overrides)).run()))
        eventloop.run(serve(config, fronts, Principal("stdio", persona) if persona else None,
                            options))
    except AlreadyRunning as exc:
        fail(str(exc))
    except ConfigError as exc:  # a front refused its settings (e.g. an unsafe bind)
        _config_failure(exc)
    except OSError as exc:  # a front could not listen
        raise click.ClickException(str(exc)) from exc


def _config_failure(exc: ConfigError) -> NoReturn:
    """Report a configuration ``vmcp start`` cannot serve; exit 2."""
    for problem in exc.problems:
        click.echo(f"error: {exc.source}: {problem}", err=True)
    raise SystemExit(2) from exc


def _front_overrides(
    fronts: list[str], host: str | None, port: int | None
) -> dict[str, dict[str, Any]]:
    """The ``--host``/``--port`` settings for each network front (every front but stdio).

    :raises click.UsageError: no network front is started, or ``--port`` would give several
        fronts the same port.
    """
    given: dict[str, Any] = {key: value for key, value in (("host", host), ("port", port))
                             if value is not None}
    if not given:
        return {}
    network = [name for name in fronts if name != "stdio"]
    if not network:
        raise click.UsageError("--host and --port set where a network front listens: "
                               "start one too (e.g. --transport http)")
    if port is not None and len(network) > 1:
        raise click.UsageError(
            f"--port gives one front its port, but {len(network)} network fronts are starting "
            f"({', '.join(network)}): set their ports in [transports.<name>] port instead")
    return dict.fromkeys(network, given)


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List the mounts: live state and tool count from the running gateway, else the
    configuration."""
    client = live_gateway()
    if client is not None:
        rows = control_call(client, "list")
    else:
        config, _ = config_from_context(ctx)
        rows = [{**mount_row(m, None), "state": "enabled" if m.enabled else "disabled"}
                for m in config.servers.values()]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no servers configured")
        return
    table(["ID", "TRANSPORT", "STATE", "TOOLS", "TARGET"],
          [[r["id"], r["transport"], r["state"], r["tools"], r["target"]] for r in rows],
          colour_columns=(2,))
    for row in rows:
        if row.get("sign_ins"):
            click.echo(f"{row['id']}: sign-in: {sign_in_summary(row['sign_ins'])}")
        if row.get("error"):
            click.echo(f"{row['id']}: {row['state']}: {row['error']}", err=True)


async def inspect_mount(config: VmcpConfig, mount_id: str) -> dict[str, Any]:
    """Start one mount of ``config`` in-process; what ``vmcp info`` shows of it.

    :raises click.ClickException: it did not start.
    """
    only = config.model_copy(update={"servers": {mount_id: config.servers[mount_id]}})
    gateway = Gateway(only, client_capabilities={})  # no front client to relay to
    try:
        await gateway.start_mounts()
        mount = gateway.mounts.get(mount_id)
        if mount is None or mount.state != "up":
            reason = mount.error if mount is not None else "could not be created"
            raise click.ClickException(f"mount {mount_id!r} did not start: {reason}")
        return mount_info(gateway, mount)
    finally:
        await gateway.stop()


@click.command("info")
@click.argument("mount_id", shell_complete=complete_mount_ids)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def info_command(ctx: click.Context, mount_id: str, as_json: bool) -> None:
    """Show what a mount's server offers: from the running gateway, or by starting that
    one mount briefly."""
    client = live_gateway()
    if client is not None:
        info = control_call(client, "info", id=mount_id)
    else:
        config, _ = config_from_context(ctx)
        if mount_id not in config.servers:
            known = ", ".join(config.servers) or "none"
            raise click.ClickException(f"unknown mount {mount_id!r} (configured: {known})")
        configure_logging(config.logging, "error", config_secrets(config))
        info = asyncio.run(inspect_mount(config, mount_id))
    if as_json:
        echo_json(info)
        if info.get("error"):
            raise SystemExit(1)
        return
    if info.get("error"):
        fail(f"{mount_id} is {info['state']}: {info['error']}")
    server = info["server"]
    click.echo(f"{mount_id}: {server.get('name', '?')} {server.get('version', '')}".rstrip())
    click.echo(f"protocol: {info['protocolVersion']}")
    if info.get("sign_ins"):
        click.echo(f"sign-in: {sign_in_summary(info['sign_ins'])}")
    for replica in info["health"]["replicas"]:
        click.echo(f"replica {replica['id']}: {replica['state']}, "
                   f"{'healthy' if replica['healthy'] else 'unhealthy'}, "
                   f"circuit {replica['circuit']}")
    from vmcp.cli.pin_review import echo_changes

    pinning = info["pinning"]
    click.echo(f"pinning: {pinning['mode']}, {pinning['pinned']} tools pinned")
    echo_changes(mount_id, pinning)
    for kind, key in (("tools", "name"), ("prompts", "name"), ("resources", "uri"),
                      ("resource_templates", "uriTemplate")):
        items = info[kind]
        click.echo(f"{kind.replace('_', ' ')} ({len(items)}):")
        for item in items:
            description = (item.get("description") or "").splitlines()
            suffix = f"  {description[0]}" if description else ""
            click.echo(f"  {item.get(key)}{suffix}")
