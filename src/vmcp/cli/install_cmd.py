"""Installing and mounting servers: ``install``, ``installed``, ``update``, ``rollback``,
``uninstall``, and the installed-server side of ``mount`` and ``unmount``."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

import anyio
import click

from vmcp.cli.output import echo_json, table
from vmcp.cli.repo_support import fail, gather_values, interactive, open_manager, parse_env
from vmcp.config import ConfigError
from vmcp.repository.errors import InstallError
from vmcp.repository.manager import InstallPlan, ServerManager, VersionChanges
from vmcp.repository.methods import METHOD_NAMES
from vmcp.repository.methods.base import argument_key

_env_option = click.option(
    "--env", "env_pairs", multiple=True, metavar="KEY=VALUE",
    help="Value of an environment variable the server needs (repeatable).",
)
_yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask; fail if input is needed.")


def _show(plan: InstallPlan, changes: VersionChanges | None, version: str) -> None:
    """The plan and what it changes for the existing mounts (on stderr, so that ``--json``
    output stays one document)."""
    for line in plan.lines() + (changes.lines(version) if changes else []):
        click.echo(line, err=True)


def _run_install(manager: ServerManager, plan: InstallPlan, yes: bool, ask: bool) -> None:
    """Ask (when something is to be installed, or ``ask``: mounts would change), then
    install (a failure has left nothing behind)."""
    if plan.installed and not ask:
        return
    if not yes and not interactive(False):
        fail("no terminal to ask on: run again with --yes (-y) to install what is shown above")
    if not yes and not click.confirm("Proceed?", default=False, err=True):
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


_json_option = click.option("--json", "as_json", is_flag=True,
                            help="Print the outcome as JSON (docs/installer.md: JSON output).")


def _changes_json(changes: VersionChanges | None, switched: list[str]) -> dict[str, object]:
    return {"switched": switched, "kept": changes.pinned if changes else {}}


@click.command("install")
@click.argument("spec", metavar="NAME[@VERSION]")
@click.option("--repo", help="Take the server from this source.")
@click.option("--method", type=click.Choice(METHOD_NAMES), help="Install method to use.")
@click.option("--id", "mount_id", help="Mount id (derived from the name by default).")
@click.option("--no-mount", is_flag=True, help="Install only; mount later with `vmcp mount`.")
@click.option("--pin", is_flag=True,
              help="Hold the new mount at this version (updates leave it alone).")
@click.option("--arg", "arg_pairs", multiple=True, metavar="NAME=VALUE",
              help="Value of a package argument (repeatable; `vmcp show` lists them), e.g. "
                   "the folder a filesystem server may use.")
@_env_option
@_yes_option
@_json_option
@click.pass_context
def install_command(
    ctx: click.Context, spec: str, repo: str | None, method: str | None, mount_id: str | None,
    no_mount: bool, pin: bool, arg_pairs: tuple[str, ...], env_pairs: tuple[str, ...],
    yes: bool, as_json: bool,
) -> None:
    """Install a server from the index and add it to the mount table.

    Prints what will run and what changes for the mounts the server has already, and asks
    first (unless --yes). Without --id, those mounts move to this version (pinned ones stay);
    with --id, the new mount gets this version and the others keep theirs.
    """
    manager = open_manager(ctx)
    values = parse_env(env_pairs)
    try:
        entry = manager.resolve(spec, repo)
        plan = manager.plan(entry, method)
        name, version = plan.manifest.name, plan.manifest.version
        live = manager.mounts_of(name)
        # Only a new mount of its own leaves the current version (and the mounts on it) be.
        becomes_current = not live or (mount_id is None and not no_mount)
        changes = manager.version_changes(name, version) if becomes_current and live else None
        _show(plan, changes, version)
        _gather_arguments(plan, {}, arg_pairs, interactive(yes))
        if not no_mount:
            if not live or mount_id is not None:
                manager.choose_mount_id(name, mount_id)
            existing = manager.table.entries().get(live[0], {}).get("env") if live else None
            gather_values(plan.method.variables(), values, interactive(yes), existing)
        _run_install(manager, plan, yes, ask=bool(changes and changes.moved))
        if becomes_current:
            manager.activate(name, version)
        result: dict[str, object] = {"name": name, "version": version,
                                     "installed": not plan.installed, "mount": None,
                                     "pinned": False, "switched": [], "kept": {}}
        if no_mount:
            message = f"installed {name} {version}; mount it with `vmcp mount {name}@{version}`"
        elif live and mount_id is None:
            switched = manager.switch_mounts(name, values)
            result.update(_changes_json(changes, switched))
            message = f"installed {name} {version}" + (
                f"; mount {', '.join(switched)} now uses it" if switched else "")
        else:
            new_id = manager.mount(name, values, mount_id, version, pin)
            pinned = new_id in manager.store.state(name).pins
            result.update(mount=new_id, pinned=pinned)
            message = f"installed {name} {version}, mounted as {new_id!r}" + (
                f" (pinned to {version})" if pinned else "")
    except (InstallError, ConfigError) as exc:
        fail(str(exc))
    if as_json:
        echo_json(result)
    else:
        click.echo(message)


def _gather_arguments(plan: InstallPlan, given: dict[str, str], pairs: tuple[str, ...],
                      ask: bool) -> None:
    """Give the package its argument values (those ``given`` before, ``--arg``, else a
    prompt), all of them checked before anything is downloaded."""
    values = dict(given)
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
            ", ".join(m + " (pinned)" if m in row["pinned"] else m for m in row["mounts"])
            or None, row["source"]] for row in rows])


@click.command("update")
@click.argument("name")
@click.option("--arg", "arg_pairs", multiple=True, metavar="NAME=VALUE",
              help="A new value of a package argument (repeatable; the others keep theirs).")
@_env_option
@_yes_option
@_json_option
@click.pass_context
def update_command(ctx: click.Context, name: str, arg_pairs: tuple[str, ...],
                   env_pairs: tuple[str, ...], yes: bool, as_json: bool) -> None:
    """Install the newest version of an installed server and switch its mounts to it.

    Mounts pinned to a version (`vmcp pin`) stay on it. The version in use before stays
    installed for `vmcp rollback`. Each switched mount is then started briefly: tool
    definitions that differ from their pins are shown, and re-pinned if you agree (with
    --yes they wait for `vmcp approve`).
    """
    manager = open_manager(ctx)
    values = parse_env(env_pairs)
    try:
        full, _ = manager.installed_name(name)
        current, plan = manager.update_plan(full)
        if plan is None:
            if as_json:
                echo_json({"name": full, "from": current.version, "to": None,
                           "switched": [], "kept": {}})
            else:
                click.echo(f"{full} {current.version} is the newest version")
            return
        live = manager.mounts_of(full)
        existing = manager.table.entries().get(live[0], {}).get("env") if live else None
        changes = manager.version_changes(full, plan.manifest.version)
        _show(plan, changes, plan.manifest.version)
        _gather_arguments(plan, current.arguments, arg_pairs, interactive(yes))
        if live:
            gather_values(plan.method.variables(), values, interactive(yes), existing)
        if not yes and not plan.installed and not click.confirm("Proceed?", default=False,
                                                                err=True):
            fail("cancelled")
        with _progress_shown():
            switched = anyio.run(manager.update, plan, values)
    except (InstallError, ConfigError) as exc:
        fail(str(exc))
    newest = plan.manifest.version
    if as_json:
        echo_json({"name": full, "from": current.version, "to": newest,
                   **_changes_json(changes, switched)})
    else:
        also = f"; mount {', '.join(switched)} now uses it" if switched else ""
        click.echo(f"updated {full} {current.version} -> {newest}{also}")
    if switched:
        from vmcp.cli.pin_review import review_update  # starts the gateway: only when needed

        review_update(ctx, switched, ask=not yes, err=as_json)


@click.command("rollback")
@click.argument("name")
@_json_option
@click.pass_context
def rollback_command(ctx: click.Context, name: str, as_json: bool) -> None:
    """Switch an installed server (its mounts not pinned) back to the version used before
    the last update."""
    manager = open_manager(ctx)
    try:
        full, _ = manager.installed_name(name)
        state = manager.store.state(full)
        changes = manager.version_changes(full, state.previous or "")
        old, new = manager.rollback(full)
    except (InstallError, ConfigError) as exc:
        fail(str(exc))
    if as_json:
        echo_json({"name": full, "from": old, "to": new,
                   **_changes_json(changes, list(changes.moved))})
        return
    click.echo(f"rolled {full} back from {old} to {new}")
    for line in changes.lines(new):
        click.echo(line)


@click.command("uninstall")
@click.argument("spec", metavar="NAME[@VERSION]")
@click.option("--force", is_flag=True, help="Also remove the mounts that use it.")
@_json_option
@click.pass_context
def uninstall_command(ctx: click.Context, spec: str, force: bool, as_json: bool) -> None:
    """Remove an installed server (every version, or the one given).

    Refused while a mount runs the version, unless --force, which unmounts it too.
    """
    manager = open_manager(ctx)
    try:
        full, version = manager.installed_name(spec)
        mounts = manager.mounts_of(full)
        removed = manager.uninstall(full, version, force)
    except (InstallError, ConfigError) as exc:
        fail(str(exc))
    gone = [m for m in mounts if m not in manager.table.entries()]
    if as_json:
        echo_json({"name": full, "removed": removed, "unmounted": gone})
        return
    also = f" and unmounted {', '.join(gone)}" if gone else ""
    click.echo(f"removed {full} {', '.join(removed)}{also}")


def mount_installed(ctx: click.Context, spec: str, mount_id: str | None,
                    env_pairs: tuple[str, ...], yes: bool, pin: bool) -> dict[str, object]:
    """Add an installed server to the mount table (what ``vmcp mount NAME[@VERSION]`` does);
    return ``{"name", "version", "id", "pinned"}``.

    With @VERSION and no other mount, that version becomes the current one; next to other
    mounts, the new mount is pinned to it and they keep theirs.
    """
    manager = open_manager(ctx)
    values = parse_env(env_pairs)
    try:
        full, version = manager.installed_name(spec)
        record = manager.current_record(full, version)
        manager.choose_mount_id(full, mount_id)
        gather_values(record.launch.variables, values, interactive(yes))
        if version is not None and not manager.mounts_of(full):
            manager.activate(full, version)
        new_id = manager.mount(full, values, mount_id, record.version, pin)
    except (InstallError, ConfigError) as exc:
        fail(str(exc))
    pinned = new_id in manager.store.state(full).pins
    return {"name": full, "version": record.version, "id": new_id, "pinned": pinned}


def describe_mounted(result: dict[str, object]) -> str:
    """The line ``vmcp mount`` prints for :func:`mount_installed`'s result."""
    pinned = f" (pinned to {result['version']})" if result["pinned"] else ""
    return f"mounted {result['name']} {result['version']} as {result['id']!r}{pinned}"


def unmount_installed(ctx: click.Context, mount_id: str) -> str | None:
    """Remove a mount from the mount table (the installed server stays); return the
    installed server it ran, if one."""
    manager = open_manager(ctx)
    try:
        return manager.unmount(mount_id)
    except (InstallError, ConfigError) as exc:
        fail(str(exc))
