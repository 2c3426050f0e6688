"""``vmcp repo``, ``vmcp search`` and ``vmcp show``: sources of manifests and finding servers."""

from __future__ import annotations

import json
import shutil
import sys
import time
from typing import Any

import anyio
import click

from vmcp.cli.output import echo_json, table
from vmcp.cli.repo_support import fail, open_index, open_manager, open_sources
from vmcp.config import ConfigError, RepositoryConfig
from vmcp.plugins import PluginError
from vmcp.repository import paths
from vmcp.repository.errors import InstallError
from vmcp.repository.methods import methods_for
from vmcp.repository.methods.base import argument_key
from vmcp.repository.sources import derive_name, guess_type
from vmcp.repository.sync import SyncResult, sync_sources


@click.group("repo")
def repo_group() -> None:
    """Manage the sources that server manifests come from."""


@repo_group.command("add")
@click.argument("url")
@click.option("--name", help="Name of the source (derived from the URL by default).")
@click.option("--type", "type_", help="Source type: git, http or pypi (guessed by default).")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A driver setting, e.g. ref=v1.2 for git, packages=a,b for pypi.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
def add_command(
    ctx: click.Context, url: str, name: str | None, type_: str | None, options: tuple[str, ...],
    as_json: bool,
) -> None:
    """Add a source of manifests (then run `vmcp repo sync`)."""
    store = open_sources(ctx)
    settings: dict[str, Any] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key or key in ("url", "type"):
            fail(f"--option expects KEY=VALUE (not url or type), got {option!r}", 2)
        settings[key] = value
    kind = type_ or guess_type(url)
    try:
        name = name or derive_name(url, set(store.load()))
        store.add(name, RepositoryConfig(url=url, type=kind, **settings))
    except (ValueError, PluginError, ConfigError) as exc:
        fail(str(exc))
    if as_json:
        echo_json({"name": name, "type": kind, "url": url, "settings": settings})
    else:
        click.echo(f"added source {name!r} ({kind}) {url}")


@repo_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List the sources and what their last sync brought."""
    try:
        sources = open_sources(ctx).load()
    except ConfigError as exc:
        fail(str(exc), 2)
    status = open_index().status()
    rows = []
    for name, config in sources.items():
        st = status.get(name)
        rows.append({
            "name": name,
            "type": config.type,
            "url": config.url,
            "manifests": st.manifests if st else 0,
            "skipped": st.skipped if st else 0,
            "synced_at": st.synced_at if st else None,
            "error": st.error if st else None,
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no sources; add one with `vmcp repo add URL`")
        return
    table(["NAME", "TYPE", "MANIFESTS", "SYNCED", "URL"],
          [[row["name"], row["type"], row["manifests"],
            time.strftime("%Y-%m-%d %H:%M", time.localtime(row["synced_at"]))
            if row["synced_at"] else "never", row["url"]] for row in rows])
    for row in rows:
        if row["error"]:
            click.echo(f"{row['name']}: last sync failed: {row['error']}", err=True)


@repo_group.command("remove")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
def remove_command(ctx: click.Context, name: str, as_json: bool) -> None:
    """Remove a source and forget its manifests (installed servers stay)."""
    try:
        open_sources(ctx).remove(name)
    except KeyError as exc:
        fail(exc.args[0])
    except ConfigError as exc:
        fail(str(exc), 2)
    open_index().remove_source(name)
    shutil.rmtree(paths.cache_root() / name, ignore_errors=True)
    if as_json:
        echo_json({"name": name, "removed": True})
    else:
        click.echo(f"removed source {name!r}")


@repo_group.command("sync")
@click.argument("name", required=False)
@click.option("--all", "all_", is_flag=True, help="Sync every source (the default).")
@click.option("--verbose", "-v", is_flag=True, help="List every skipped manifest.")
@click.pass_context
def sync_command(ctx: click.Context, name: str | None, all_: bool, verbose: bool) -> None:
    """Fetch sources and rebuild their part of the search index.

    Sources sync concurrently; one that fails is reported and keeps its previous manifests.
    Exits 1 when any source failed.
    """
    try:
        sources = open_sources(ctx).load()
    except ConfigError as exc:
        fail(str(exc), 2)
    if name and not all_:
        if name not in sources:
            fail(f"no source {name!r} (see `vmcp repo list`)")
        sources = {name: sources[name]}
    if not sources:
        fail("no sources; add one with `vmcp repo add URL`")
    progress = _Progress(len(sources), verbose)
    results = anyio.run(
        lambda: sync_sources(sources, open_index(), paths.cache_root(), on_done=progress.done)
    )
    progress.finish()
    failed = [r for r in results if not r.ok]
    click.echo(f"synced {len(results) - len(failed)} of {len(results)} sources")
    if failed:
        raise SystemExit(1)


class _Progress:
    """Prints each source's result as it finishes, with a running count on a terminal."""

    def __init__(self, total: int, verbose: bool) -> None:
        self.total = total
        self.count = 0
        self.verbose = verbose
        self.tty = sys.stderr.isatty()
        self._status()

    def _status(self) -> None:
        if self.tty:
            click.echo(f"\r[{self.count}/{self.total}] syncing...", nl=False, err=True)

    def _clear(self) -> None:
        if self.tty:
            click.echo("\r\033[K", nl=False, err=True)

    def done(self, result: SyncResult) -> None:
        """Report one finished source."""
        self.count += 1
        self._clear()
        if result.ok:
            skipped = f", {len(result.problems)} skipped" if result.problems else ""
            click.echo(f"ok   {result.source}: {result.manifests} manifests{skipped} "
                       f"({result.seconds:.1f}s)")
            shown = result.problems if self.verbose else result.problems[:5]
            for problem in shown:
                click.echo(f"     skipped {problem}", err=True)
            if len(shown) < len(result.problems):
                click.echo(f"     ... and {len(result.problems) - len(shown)} more (-v lists all)",
                           err=True)
        else:
            click.echo(f"FAIL {result.source}: {result.error}", err=True)
        self._status()

    def finish(self) -> None:
        """Remove the running count."""
        self._clear()


@click.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def search_command(query: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Search the synced manifests by name, title, description and tags."""
    hits = open_index().search(" ".join(query), limit)
    if as_json:
        click.echo(json.dumps([
            {"name": h.name, "version": h.version, "source": h.source,
             "title": h.document.get("title"), "description": h.document.get("description", ""),
             "tags": h.manifest.tags}
            for h in hits
        ], indent=2))
        return
    if not hits:
        click.echo("no match (is the index synced? `vmcp repo sync`)")
        return
    width = shutil.get_terminal_size((100, 20)).columns
    name_w = max(4, *(len(h.name) for h in hits))
    ver_w = max(7, *(len(h.version) for h in hits))
    src_w = max(6, *(len(h.source) for h in hits))
    room = max(20, width - name_w - ver_w - src_w - 6)
    rows = []
    for h in hits:
        desc = " ".join(str(h.document.get("description", "")).split())
        rows.append([h.name, h.version, h.source,
                     desc if len(desc) <= room else desc[: room - 1] + "…"])
    table(["NAME", "VERSION", "SOURCE", "DESCRIPTION"], rows)


@click.command("show")
@click.argument("name")
@click.option("--repo", help="Only look in this source.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored manifest as JSON.")
@click.option("--no-readme", is_flag=True, help="Leave out the server's README.")
@click.pass_context
def show_command(ctx: click.Context, name: str, repo: str | None, as_json: bool,
                 no_readme: bool) -> None:
    """Show a server's manifest, install methods and variables (NAME[@VERSION]; NAME is
    the server's name, its last part, or the name of its package)."""
    manager = open_manager(ctx, changes=False)
    try:
        entry = manager.resolve(name, repo)
    except InstallError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(entry.document, indent=2))
        return
    manifest = entry.manifest
    click.echo(f"{manifest.name} {manifest.version}")
    if manifest.title:
        click.echo(f"  title:       {manifest.title}")
    click.echo(f"  description: {manifest.description}")
    click.echo(f"  source:      {entry.source} ({entry.location})")
    if manifest.website_url:
        click.echo(f"  website:     {manifest.website_url}")
    if manifest.tags:
        click.echo(f"  tags:        {', '.join(manifest.tags)}")
    versions = [e.version for e in manager.index.lookup(manifest.name, entry.source)]
    click.echo(f"  versions:    {', '.join(versions)}")
    installed = [r.version for r in manager.store.versions(manifest.name)]
    if installed:
        click.echo(f"  installed:   {', '.join(installed)}")
    click.echo("install methods:")
    for method in methods_for(manifest):
        why = method.unavailable()
        state = "" if why is None else f"  (unavailable: {why})"
        click.echo(f"  {method.kind:<7} {method.summary()}{state}")
        for var in method.variables():
            flags = ", ".join(f for f, on in (("required", var.required),
                                              ("secret", var.secret)) if on) or "optional"
            click.echo(f"            {var.name} [{flags}] {var.description}".rstrip())
        for arg in method.arguments():
            if arg.value is None:
                need = "required" if arg.is_required and arg.default is None else "optional"
                click.echo(f"            argument {argument_key(arg)} [{need}, --arg "
                           f"{argument_key(arg)}=VALUE] {arg.description or ''}".rstrip())
    unknown = sorted({p.registry_type for p in manifest.packages} - {"pypi", "npm", "mcpb"})
    if unknown:
        click.echo(f"  not supported by vmcp: {', '.join(unknown)}")
    click.echo("manifest:")
    click.echo(json.dumps(entry.document, indent=2))
    if entry.readme and no_readme:
        click.echo(f"readme: {len(entry.readme.splitlines())} lines (left out)")
    elif entry.readme:
        click.echo("readme:")
        click.echo(entry.readme.rstrip())

