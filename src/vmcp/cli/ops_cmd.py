"""``vmcp status``, ``stop``, ``mount``, ``unmount``, ``reload``, and ``start -d``.

Each acts on the gateway running with this ``$VMCP_HOME`` through its control socket, and on
the configuration files when none runs (``mount``/``unmount`` then set ``enabled``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from vmcp.cli.common import config_from_context
from vmcp.cli.completion import complete_mount_ids
from vmcp.cli.output import SIGNED_IN, coloured, echo_json, fail, table
from vmcp.config import ConfigError, VmcpConfig
from vmcp.control import daemon
from vmcp.control.client import ControlClient, NotRunning
from vmcp.control.instance import AlreadyRunning, probe
from vmcp.control.paths import RunPaths
from vmcp.control.protocol import ControlError
from vmcp.control.runtime import RunOptions
from vmcp.fileutil import held_lock

#: seconds ``start -d`` waits beyond the mounts' start-up timeout for the gateway to be ready
READY_MARGIN = 30.0


def config_path_of(ctx: click.Context) -> Path | None:
    """The ``--config`` path given to ``vmcp``, if any."""
    raw = (ctx.find_root().obj or {}).get("config_path")
    return Path(raw) if raw else None


def live_gateway() -> ControlClient | None:
    """A control client for the gateway running with this home, or None (a stale pid file
    is cleaned and said so on stderr)."""
    paths = RunPaths.current()
    found = probe(paths)
    if found.stale_pid is not None:
        click.echo(f"vmcp: removed a stale pid file (pid {found.stale_pid} is gone)", err=True)
    if not found.running or not paths.socket.exists():
        return None
    return ControlClient(paths)


def control_call(client: ControlClient, op: str, **args: Any) -> Any:
    """Run one control operation; exit 1 (2 for an invalid configuration) when it fails."""
    try:
        return client.call(op, **args)
    except NotRunning:
        fail("the gateway stopped answering on its control socket")
    except ControlError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        fail(exc.message, 2 if exc.problems else 1)


def start_detached(ctx: click.Context, config: VmcpConfig, fronts: Sequence[str],
                   log_level: str | None, start_args: Sequence[str] = ()) -> None:
    """``vmcp start -d``: start the gateway in the background and report where it listens
    (``start_args``: more ``vmcp start`` options for it)."""
    if "stdio" in fronts:
        fail("a detached gateway cannot serve stdio: choose a network front "
             "(-t http, -t ws) or set [gateway] fronts", 2)
    paths = RunPaths.current()
    raw = (ctx.find_root().obj or {}).get("config_path")
    try:
        report = daemon.detach(paths, raw, fronts, log_level,
                               config.gateway.startup_timeout + READY_MARGIN, start_args)
    except AlreadyRunning as exc:
        fail(str(exc))
    except daemon.DaemonError as exc:
        fail(str(exc))
    click.echo(f"vmcp started in the background (pid {report['pid']})")
    for name, where in report["fronts"].items():
        click.echo(f"  {name}: {where}")
    if report.get("metrics"):
        click.echo(f"  metrics: {report['metrics']}")
    click.echo(f"  log: {report['log']}")


def run_options(ctx: click.Context, config: VmcpConfig, log_level: str | None,
                ready_fd: int | None) -> RunOptions:
    """How ``vmcp start`` runs: a detached gateway (``--ready-fd``) logs to ``logs/``."""
    detached = ready_fd is not None
    log_file = (str(RunPaths.current().log_file)
                if detached and not config.logging.file else None)
    return RunOptions(config_path_of(ctx), detached, ready_fd, log_level, log_file)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{value}{unit}" for value, unit in parts if value]
    return "".join(shown[:2]) or "0s"


def _print_status(status: dict[str, Any]) -> None:
    click.echo(f"vmcp {status['version']} {coloured('running')} (pid {status['pid']}), "
               f"up {_duration(status['uptime'])}")
    fronts = ", ".join(f"{f['name']} {f['where'] or '(starting)'}" for f in status["fronts"])
    click.echo(f"fronts:   {fronts or 'none (control socket only)'}")
    click.echo(f"sessions: {status['sessions']}")
    for worker in status.get("workers", []):
        click.echo(f"worker {worker['index']}: pid {worker['pid']}, {worker['state']}, "
                   f"{worker['restarts']} restarts, {worker.get('sessions') or 0} sessions")
    health = status.get("health")
    if health is not None:
        click.echo("ready:    " + ("yes" if health["ready"] else
                                   "no (" + ", ".join(health["problems"]) + ")"))
    _print_cluster(status.get("cluster"))
    requests = status.get("requests")
    counted = (f"{requests['total']} ({requests['errors']} errors)" if requests
               else "not counted (set [monitoring] metrics_port)")
    click.echo(f"requests: {counted}")
    cache = status.get("cache")
    if cache:
        click.echo(f"cache:    {cache.get('hits', 0)} hits, {cache.get('misses', 0)} misses")
    if status.get("metrics"):
        click.echo(f"metrics:  {status['metrics']}")
    if status.get("log"):
        click.echo(f"log:      {status['log']}")
    rows = []
    for mount in status["mounts"]:
        replicas = mount["replicas"]
        healthy = sum(1 for r in replicas if r["state"] == "up" and r["healthy"])
        circuits = ",".join(sorted({r["circuit"] for r in replicas})) or "-"
        rows.append([mount["id"], mount["state"], f"{healthy}/{len(replicas)}", circuits,
                     mount["in_flight"], mount.get("requests"), mount.get("errors"),
                     mount.get("error") or ""])
    if rows:
        click.echo("")
        table(["MOUNT", "STATE", "HEALTHY", "CIRCUIT", "IN-FLIGHT", "REQUESTS", "ERRORS",
               "PROBLEM"], rows, colour_columns=(1, 3))
    grants = [[mount["id"], grant.get("persona") or "(service)", grant["state"],
               grant.get("expires") or ""]
              for mount in status["mounts"] for grant in mount.get("sign_ins") or ()
              if grant["state"] not in SIGNED_IN and grant["state"] != "signed-out"]
    if grants:
        click.echo("\ngrants needing a sign-in (vmcp auth login MOUNT [--persona P]):")
        table(["MOUNT", "PERSONA", "STATE", "EXPIRES"], grants)


def _print_cluster(cluster: dict[str, Any] | None) -> None:
    if cluster is None:
        return
    problem = cluster.get("problem")
    click.echo(f"cluster:  instance {cluster['instance']}, shared state "
               + (f"{coloured('unreachable')} ({problem})" if problem else coloured("up")))
    instances = cluster.get("instances") or []
    if instances:
        now = time.time()
        table(["INSTANCE", "HOST", "PID", "SESSIONS", "SEEN"],
              [[i["instance"] + (" (this)" if i["instance"] == cluster["instance"] else ""),
                i["host"], i["pid"], i["sessions"], f"{max(0.0, now - i['seen']):.0f}s ago"]
               for i in instances])


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(as_json: bool) -> None:
    """Is a gateway running with this home, and how is it doing (exit 1: not running)."""
    client = live_gateway()
    if client is None:
        if as_json:
            echo_json({"running": False})
        else:
            click.echo("vmcp is not running")
        raise SystemExit(1)
    status = control_call(client, "status")
    if as_json:
        echo_json(status)
    else:
        _print_status(status)


@click.command("stop")
@click.option("--json", "as_json", is_flag=True, help='Print {"stopped": pid} as JSON.')
@click.pass_context
def stop_command(ctx: click.Context, as_json: bool) -> None:
    """Stop the running gateway: calls in flight finish (shutdown_grace), backends stop."""
    config, _ = config_from_context(ctx)
    pid = daemon.stop(RunPaths.current(), config.gateway.shutdown_grace)
    if pid is None:
        fail("vmcp is not running")
    if as_json:
        echo_json({"stopped": pid})
    else:
        click.echo(f"vmcp stopped (pid {pid})")


def _set_enabled(ctx: click.Context, mount_id: str, enabled: bool) -> Path:
    from vmcp.control.mounttable import MountTableError, set_enabled
    from vmcp.repository.paths import changes_lock

    config_from_context(ctx)  # an invalid configuration exits 2 with its errors
    try:
        with held_lock(changes_lock()):  # not between an install's read and write
            return set_enabled(config_path_of(ctx), mount_id, enabled)
    except MountTableError as exc:
        fail(str(exc))
    except (ConfigError, OSError, ValueError) as exc:
        fail(f"cannot change the configuration: {exc}", 2)


def _installed_mount(ctx: click.Context, mount_id: str) -> bool:
    """True when ``mount_id`` was mounted from an installed server (``vmcp install``)."""
    from vmcp.cli.repo_support import open_manager  # the repository system, only when needed

    manager = open_manager(ctx, changes=False)
    return any(mount_id in manager.mounts_of(name) for name in manager.store.names())


def _mount_live(client: ControlClient, mount_id: str, as_json: bool) -> None:
    mount = control_call(client, "mount", id=mount_id)
    if as_json:
        echo_json({"live": True, **mount})
    else:
        click.echo(f"mounted {mount_id}: {coloured(mount['state'])}, {mount['tools']} tools")


@click.command("mount")
@click.argument("spec", metavar="ID|NAME[@VERSION]", shell_complete=complete_mount_ids)
@click.option("--id", "mount_id", help="Mount id for an installed server (default: its name).")
@click.option("--env", "env_pairs", multiple=True, metavar="KEY=VALUE",
              help="Value of an environment variable an installed server needs (repeatable).")
@click.option("--pin", is_flag=True,
              help="Hold an installed server's new mount at its version (updates leave it).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask; fail if input is needed.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def mount_command(ctx: click.Context, spec: str, mount_id: str | None,
                  env_pairs: tuple[str, ...], pin: bool, yes: bool, as_json: bool) -> None:
    """Mount a server.

    ID, a server of the configuration: mounted on the running gateway (clients get
    list_changed), or marked enabled when none runs. NAME[@VERSION], an installed server:
    added to the mount table (and mounted live when a gateway runs); next to its other
    mounts, a new one at another version is pinned to it.
    """
    config, _ = config_from_context(ctx)
    client = live_gateway()
    if mount_id is None and not env_pairs and not pin and spec in config.servers:
        if client is not None:
            _mount_live(client, spec, as_json)
            return
        path = _set_enabled(ctx, spec, True)
        if as_json:
            echo_json({"live": False, "id": spec, "enabled": True, "file": str(path)})
        else:
            click.echo(f"{spec} enabled in {path} (no gateway running: it mounts at the "
                       "next start)")
        return
    from vmcp.cli import install_cmd  # the repository system, only for installed servers

    result = install_cmd.mount_installed(ctx, spec, mount_id, env_pairs, yes, pin)
    live = None
    if client is not None and result["id"] not in config.servers:
        live = control_call(client, "mount", id=result["id"])
    if as_json:
        echo_json({**result, "live": live is not None, "mount": live})
        return
    click.echo(install_cmd.describe_mounted(result))
    if live is not None:
        click.echo(f"mounted {result['id']}: {coloured(live['state'])}, {live['tools']} tools")


@click.command("unmount")
@click.argument("mount_id", shell_complete=complete_mount_ids)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def unmount_command(ctx: click.Context, mount_id: str, as_json: bool) -> None:
    """Unmount a server from the running gateway (sessions stay connected, clients get
    list_changed). With none running: a mount of an installed server leaves the mount
    table (the server stays installed); one you wrote is kept, marked enabled = false."""
    client = live_gateway()
    if client is not None:
        result = control_call(client, "unmount", id=mount_id)
        if as_json:
            echo_json({"live": True, **result})
        else:
            click.echo(f"unmounted {mount_id}")
        return
    if _installed_mount(ctx, mount_id):
        from vmcp.cli import install_cmd

        name = install_cmd.unmount_installed(ctx, mount_id)
        if as_json:
            echo_json({"live": False, "id": mount_id, "removed": True, "server": name})
        else:
            click.echo(f"unmounted {mount_id!r}; {name} stays installed")
        return
    path = _set_enabled(ctx, mount_id, False)
    if as_json:
        echo_json({"live": False, "id": mount_id, "enabled": False, "file": str(path)})
    else:
        click.echo(f"{mount_id} disabled in {path} (no gateway running)")


@click.command("reload")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def reload_command(as_json: bool) -> None:
    """Make the running gateway re-read its configuration (as SIGHUP does); an invalid
    file is rejected with its errors (exit 2) and the running configuration stays; a mount
    that fails to start is named with its cause (exit 1)."""
    client = live_gateway()
    if client is None:
        fail("vmcp is not running")
    changes = control_call(client, "reload")
    failed = changes.get("failed") or {}
    if as_json:
        echo_json(changes)
    else:
        summary = [f"{word} {', '.join(ids)}" for key, word in
                   (("added", "mounted"), ("removed", "unmounted"), ("changed", "remounted"))
                   if (ids := [i for i in changes.get(key, []) if i not in failed])]
        click.echo("reloaded" + (": " + "; ".join(summary) if summary else ", no mount changed"))
        if changes.get("restart_needed"):
            click.echo(f"restart to apply: {', '.join(changes['restart_needed'])}")
        for mount_id, cause in failed.items():
            click.echo(f"error: {mount_id} failed to mount: {cause}", err=True)
    if failed:
        raise SystemExit(1)
