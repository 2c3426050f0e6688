"""Installing and mounting servers: ``install``, ``installed``, ``update``, ``rollback``,
``uninstall``, ``mount`` and ``unmount``."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

import anyio
import click

from vmcp.cli.output import table
from vmcp.cli.repo_support import fail, gather_values, interactive, open_manager, parse_env
from vmcp.config import ConfigError
from vmcp.repository.errors import InstallError
from vmcp.repository.manager import InstallPlan, ServerManager
from vmcp.repository.methods import METHOD_NAMES
from vmcp.repository.methods.base import argument_key

_env_option = click.option(
    "--env", "env_pairs", multiple=True, metavar="KEY=VALUE",
    help="Value of an environment variable the server needs (repeatable).",
)
_yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask; fail if input is needed.")


def _show(plan: InstallPlan) -> None:
    for line in plan.lines():
        click.echo(line)


def _run_install(manager: ServerManager, plan: InstallPlan, yes: bool) -> None:
    """Ask, then install (a failure has left nothing behind)."""
    if plan.installed:
        return
    if not yes and not interactive(False):
        fail("no terminal to ask on: run again with --yes (-y) to install what is shown above")
    if not yes and not click.confirm("Proceed?", default=False):
        fail("cancelled")
    try:
        with _progress_shown():
            anyio.run(manager.install, plan)
    except InstallError as exc:
        fail(f"install failed, nothing was kept: {exc}")


class _EchoHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"  {record.getMessage()}", err=True)


@contextlib.contextmanager
def _progress_shown() -> Iterator[None]:
    """Show on stderr what the package managers are doing while they run."""
    from vmcp.repository import process

    handler = _EchoHandler(logging.INFO)
    saved = process.log.level
    process.log.addHandler(handler)
    process.log.setLevel(logging.INFO)
    try:
        yield
    finally:
        process.log.removeHandler(handler)
        process.log.setLevel(saved)


@click.command("install")
@click.argument("spec", metavar="NAME[@VERSION]")
@click.option("--repo", help="Take the server from this source.")
@click.option("--method", type=click.Choice(METHOD_NAMES), help="Install method to use.")
@click.option("--id", "mount_id", help="Mount id (derived from the name by default).")
@click.option("--no-mount", is_flag=True, help="Install only; mount later with `vmcp mount`.")
@click.option("--arg", "arg_pairs", multiple=True, metavar="NAME=VALUE",
              help="Value of a package argument (repeatable; `vmcp show` lists them), e.g. "
                   "the folder a filesystem server may use.")
@_env_option
@_yes_option
@click.pass_context
def install_command(
    ctx: click.Context, spec: str, repo: str | None, method: str | None, mount_id: str | None,
    no_mount: bool, arg_pairs: tuple[str, ...], env_pairs: tuple[str, ...], yes: bool,
) -> None:
    """Install a server from the index and add it to the mount table.

    Prints what will run and asks first (unless --yes). PyPI packages go into a venv of their
    own, npm packages into a prefix of their own; remotes are recorded with no install.
    """
    manager = open_manager(ctx)
    values = parse_env(env_pairs)
    try:
        entry = manager.resolve(spec, repo)
        plan = manager.plan(entry, method)
        name, version = plan.manifest.name, plan.manifest.version
        live = manager.mounts_of(name)
        _show(plan)
        _gather_arguments(plan, arg_pairs, interactive(yes))
        if not no_mount:
            if not live or mount_id is not None:
                manager.choose_mount_id(name, mount_id)
            existing = manager.table.entries().get(live[0], {}).get("env") if live else None
            gather_values(plan.method.variables(), values, interactive(yes), existing)
        _run_install(manager, plan, yes)
        manager.activate(name, version)
        if no_mount:
            click.echo(f"installed {name} {version}; mount it with `vmcp mount {name}`")
        elif live and mount_id is None:
            switched = manager.switch_mounts(name, values)
            click.echo(f"installed {name} {version}; mount {', '.join(switched)} now uses it")
        else:
            new_id = manager.mount(name, values, mount_id)
            click.echo(f"installed {name} {version}, mounted as {new_id!r}")
    except (InstallError, ConfigError) as exc:
        fail(str(exc))


def _gather_arguments(plan: InstallPlan, pairs: tuple[str, ...], ask: bool) -> None:
    """Give the package its argument values (``--arg``, else a prompt), all of them checked
    before anything is downloaded."""
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--arg expects NAME=VALUE, got {pair!r}", 2)
        values[key] = value
    known = {argument_key(arg) for arg in plan.method.arguments()}
    unknown = sorted(set(values) - known)
    if unknown:
        fail(f"{plan.manifest.name} takes no argument {', '.join(unknown)} "
             f"(its arguments: {', '.join(sorted(known)) or 'none'})", 2)
    plan.method.argument_values = values
    missing = plan.method.missing_arguments()
    if missing and not ask:
        fail("required arguments without a value: " + ", ".join(
            f"{argument_key(a)}" + (f" ({a.description})" if a.description else "")
            for a in missing) + " (pass --arg NAME=VALUE)")
    for arg in missing:
        label = argument_key(arg) + (f" ({arg.description})" if arg.description else "")
        values[argument_key(arg)] = click.prompt(label)


@click.command("installed")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def installed_command(ctx: click.Context, as_json: bool) -> None:
    """List installed servers and their versions (* marks the current one)."""
    manager = open_manager(ctx, changes=False)
    rows = manager.installed_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("nothing installed; see `vmcp search` and `vmcp install`")
        return
    table(["", "NAME", "VERSION", "METHOD", "MOUNTED AS", "SOURCE"],
          [["*" if row["current"] else " ", row["name"], row["version"], row["method"],
            ", ".join(row["mounts"]) or None, row["source"]] for row in rows])


@click.command("update")
@click.argument("name")
@_env_option
@_yes_option
@click.pass_context
def update_command(ctx: click.Context, name: str, env_pairs: tuple[str, ...], yes: bool) -> None:
    """Install the newest version of an installed server and switch to it.

    The version in use before stays installed for `vmcp rollback`. Each mount of it is then
    started briefly: tool definitions that differ from their pins are shown, and re-pinned
    if you agree (with --yes they wait for `vmcp approve`).
    """
    manager = open_manager(ctx)
    values = parse_env(env_pairs)
    try:
        full, _ = manager.installed_name(name)
        current, plan = manager.update_plan(full)
        if plan is None:
            click.echo(f"{full} {current.version} is the newest version")
            return
        live = manager.mounts_of(full)
        existing = manager.table.entries().get(live[0], {}).get("env") if live else None
        _show(plan)
        if live:
            gather_values(plan.method.variables(), values, interactive(yes), existing)
        if not yes and not plan.installed and not click.confirm("Proceed?", default=False):
            fail("cancelled")
        switched = anyio.run(manager.update, plan, values)
    except (InstallError, ConfigError) as exc:
        fail(str(exc))
    newest = plan.manifest.version
    also = f"; mount {', '.join(switched)} now uses it" if switched else ""
    click.echo(f"updated {full} {current.version} -> {newest}{also}")
    if switched:
        from vmcp.cli.pin_review import review_update  # starts the gateway: only when needed

        review_update(ctx, switched, ask=not yes)


@click.command("rollback")
@click.argument("name")
@click.pass_context
def rollback_command(ctx: click.Context, name: str) -> None:
    """Switch an installed server back to the version used before the last update."""
    manager = open_manager(ctx)
    try:
        full, _ = manager.installed_name(name)
        old, new = manager.rollback(full)
    except (InstallError, ConfigError) as exc:
        fail(str(exc))
    click.echo(f"rolled {full} back from {old} to {new}")


@click.command("uninstall")
@click.argument("spec", metavar="NAME[@VERSION]")
@click.option("--force", is_flag=True, help="Also remove the mounts that use it.")
@click.pass_context
def uninstall_command(ctx: click.Context, spec: str, force: bool) -> None:
    """Remove an installed server (every version, or the one given).

    Refused while the version is mounted, unless --force, which unmounts it too.
    """
    manager = open_manager(ctx)
    try:
        full, version = manager.installed_name(spec)
        mounts = manager.mounts_of(full)
        removed = manager.uninstall(full, version, force)
    except (InstallError, ConfigError) as exc:
        fail(str(exc))
    gone = [m for m in mounts if m not in manager.table.entries()]
    also = f" and unmounted {', '.join(gone)}" if gone else ""
    click.echo(f"removed {full} {', '.join(removed)}{also}")


@click.command("mount")
@click.argument("spec", metavar="NAME[@VERSION]")
@click.option("--id", "mount_id", help="Mount id (derived from the name by default).")
@_env_option
@_yes_option
@click.pass_context
def mount_command(
    ctx: click.Context, spec: str, mount_id: str | None, env_pairs: tuple[str, ...], yes: bool
) -> None:
    """Add an installed server to the mount table with its command, arguments and env.

    With @VERSION that installed version becomes the current one first.
    """
    manager = open_manager(ctx)
    values = parse_env(env_pairs)
    try:
        full, version = manager.installed_name(spec)
        record = manager.current_record(full, version)
        manager.choose_mount_id(full, mount_id)
        gather_values(record.launch.variables, values, interactive(yes))
        if version is not None:
            manager.activate(full, version)
        new_id = manager.mount(full, values, mount_id)
    except (InstallError, ConfigError) as exc:
        fail(str(exc))
    click.echo(f"mounted {full} {record.version} as {new_id!r}")


@click.command("unmount")
@click.argument("mount_id")
@click.pass_context
def unmount_command(ctx: click.Context, mount_id: str) -> None:
    """Remove a mount from the mount table (the installed server stays)."""
    manager = open_manager(ctx)
    try:
        name = manager.unmount(mount_id)
    except (InstallError, ConfigError) as exc:
        fail(str(exc))
    kept = f"; {name} stays installed" if name else ""
    click.echo(f"unmounted {mount_id!r}{kept}")
