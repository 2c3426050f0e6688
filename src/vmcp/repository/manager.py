"""The install side of the repository system: resolve, plan, install, switch, mount, remove.

:class:`ServerManager` ties the search index, the installed-versions store and the mount
table together. It never prompts: the CLI asks the user, then calls it. Every step that can
fail does so before anything visible changes: an install is built in its version folder and
recorded only when complete (and removed on any failure), the current version and the mounts
are switched after that, and every file is written atomically.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from vmcp.repository import paths
from vmcp.repository.errors import InstallError
from vmcp.repository.index import IndexEntry, SearchIndex
from vmcp.repository.installed import InstalledStore, InstallRecord, ServerState
from vmcp.repository.manifest import ServerManifest
from vmcp.repository.methods import InstallMethod, choose_method
from vmcp.repository.mount_entry import mount_entry
from vmcp.repository.mounts import LAUNCH_KEYS, MountTable, mount_id_for
from vmcp.repository.versions import version_key


@dataclass
class InstallPlan:
    """What installing one version will do, for the user to read before it happens."""

    entry: IndexEntry
    manifest: ServerManifest
    method: InstallMethod
    target: Path
    installed: bool

    def lines(self) -> list[str]:
        """A description of the plan: the server, the folder and every command to run."""
        head = (f"{self.manifest.name} {self.manifest.version} from source "
                f"'{self.entry.source}' via {self.method.kind}")
        if self.installed:
            return [head, f"  already installed in {self.target}"]
        steps = [f"  $ {step}" for step in self.method.steps(self.target)]
        return [head, f"  into {self.target}", *steps]


@dataclass
class VersionChanges:
    """What a change of a server's current version does to its mounts."""

    #: mount id -> the version it leaves (those that follow the current version)
    moved: dict[str, str]
    #: mount id -> the version it is pinned at, which it keeps
    pinned: dict[str, str]

    def lines(self, version: str) -> list[str]:
        """The changes in words, one line per mount."""
        return [f"  mount {m} changes from {old} to {version}" for m, old in self.moved.items()] \
            + [f"  mount {m} stays at {kept} (pinned; `vmcp unpin {m}` lets it follow)"
               for m, kept in self.pinned.items()]


def split_spec(spec: str) -> tuple[str, str | None]:
    """``NAME[@VERSION]`` as (name, version or None)."""
    name, sep, version = spec.partition("@")
    return name, (version if sep and version else None)


class ServerManager:
    """Operations on installed servers."""

    @classmethod
    def beside(cls, config_file: Path) -> ServerManager:
        """The manager of ``$VMCP_HOME``'s installed servers, with the mount table beside
        the configuration file ``config_file``."""
        return cls(SearchIndex(paths.index_file()), InstalledStore(paths.installed_root()),
                   MountTable(config_file.parent / "servers.toml"))

    def __init__(self, index: SearchIndex, store: InstalledStore, table: MountTable) -> None:
        self.index = index
        self.store = store
        self.table = table

    # -- finding ----------------------------------------------------------------------------

    def resolve(self, spec: str, source: str | None = None) -> IndexEntry:
        """The index entry ``NAME[@VERSION]`` names (the newest version when none is given).

        :raises InstallError: nothing or several different servers match.
        """
        name, version = split_spec(spec)
        entries = self.index.lookup(name, source)
        where = f" in source {source!r}" if source else ""
        if not entries:
            raise InstallError(
                f"no server {name!r}{where} in the index (try `vmcp search`, `vmcp repo sync`)"
            )
        names = sorted({e.name for e in entries})
        if len(names) > 1:
            raise InstallError(f"{name!r} is ambiguous: {', '.join(names)}; give the full name")
        if version is not None:
            matching = [e for e in entries if e.version == version]
            if not matching:
                known = ", ".join(dict.fromkeys(e.version for e in entries))
                raise InstallError(f"{names[0]} has no version {version}{where} (known: {known})")
            entries = matching
        order = sorted({e.version for e in entries}, key=version_key)
        return sorted(entries, key=lambda e: (-order.index(e.version), e.source))[0]

    def installed_name(self, spec: str) -> tuple[str, str | None]:
        """The installed server ``NAME[@VERSION]`` refers to (full or short name, or the
        name of its package).

        :raises InstallError: nothing installed matches, or several do.
        """
        name, version = split_spec(spec)
        names = self.store.names()
        if name in names:
            return name, version
        short = [n for n in names if n.rsplit("/", 1)[-1].lower() == name.lower()]
        if not short:  # the name of a package it installs, as users know it
            short = [n for n in names if name in self._package_names(n)]
        if len(short) == 1:
            return short[0], version
        if short:
            raise InstallError(f"{name!r} is ambiguous: {', '.join(short)}; give the full name")
        raise InstallError(f"{name!r} is not installed (see `vmcp installed`)")

    def _package_names(self, name: str) -> set[str]:
        """The package identifiers the installed versions of ``name`` were made from."""
        return {str(package.get("identifier")) for record in self.store.versions(name)
                for package in record.manifest.get("packages") or []
                if isinstance(package, dict)}

    # -- installing -------------------------------------------------------------------------

    def plan(self, entry: IndexEntry, method: str | None = None) -> InstallPlan:
        """How ``entry`` would be installed (choosing the method unless one is asked for)."""
        manifest = entry.manifest
        chosen = choose_method(manifest, method)
        target = self.store.version_dir(manifest.name, manifest.version)
        installed = self.store.record(manifest.name, manifest.version) is not None
        return InstallPlan(entry, manifest, chosen, target, installed)

    async def install(self, plan: InstallPlan) -> InstallRecord:
        """Carry out ``plan``; on any failure remove everything it created and re-raise."""
        manifest = plan.manifest
        existing = self.store.record(manifest.name, manifest.version)
        if existing is not None:
            return existing
        server_dir = self.store.server_dir(manifest.name)
        new_server = not server_dir.exists()
        if plan.target.exists():  # the remains of an interrupted install
            shutil.rmtree(plan.target)
        plan.target.mkdir(parents=True)
        try:
            launch = await plan.method.install(plan.target)
            declared = plan.method.variables()
            names = {v.name for v in declared}
            launch.variables = declared + [v for v in launch.variables if v.name not in names]
            record = InstallRecord(
                name=manifest.name,
                version=manifest.version,
                source=plan.entry.source,
                method=plan.method.kind,
                installed_at=time.time(),
                launch=launch,
                description=manifest.description,
                manifest=plan.entry.document,
                arguments=dict(plan.method.argument_values),
            )
            self.store.write_record(record)
        except BaseException:
            shutil.rmtree(plan.target, ignore_errors=True)
            if new_server:
                shutil.rmtree(server_dir, ignore_errors=True)
            raise
        return record

    def activate(self, name: str, version: str) -> ServerState:
        """Make ``version`` the current one, keeping the one before as ``previous``."""
        state = self.store.state(name)
        if state.current != version:
            state.previous = state.current
            state.current = version
        self.store.save_state(state)
        return state

    def newest(self, name: str) -> IndexEntry | None:
        """The newest indexed version of an installed server, preferring its own source."""
        state = self.store.state(name)
        record = self.store.record(name, state.current) if state.current else None
        if record is not None:
            own = self.index.lookup(name, record.source)
            if own:
                return own[0]
        entries = self.index.lookup(name)
        return entries[0] if entries else None

    def update_plan(self, name: str) -> tuple[InstallRecord, InstallPlan | None]:
        """The record in use of an installed server, and the plan installing its newest
        version with the same method (None when the one in use is the newest)."""
        current = self.current_record(name)
        newest = self.newest(name)
        if newest is None or version_key(newest.version) <= version_key(current.version):
            return current, None
        return current, self.plan(newest, current.method)

    async def update(self, plan: InstallPlan, values: Mapping[str, str]) -> list[str]:
        """Carry out an update plan: install, make it current, switch the server's mounts
        that are not pinned to it (keeping their settings); return the mounts switched."""
        await self.install(plan)
        name = plan.manifest.name
        self.activate(name, plan.manifest.version)
        return self.switch_mounts(name, values)

    def rollback(self, name: str) -> tuple[str, str]:
        """Switch back to the previous version; return (from, to).

        :raises InstallError: there is no previous version installed.
        """
        state = self.store.state(name)
        if not state.previous or self.store.record(name, state.previous) is None:
            raise InstallError(f"{name} has no previous version to roll back to")
        old, new = state.current or "", state.previous
        self.activate(name, new)
        self.switch_mounts(name, {})
        return old, new

    def version_changes(self, name: str, version: str) -> VersionChanges:
        """What making ``version`` the current one would do to the server's mounts."""
        state = self.store.state(name)
        live = self.mounts_of(name)
        pinned = {m: state.pins[m] for m in live if m in state.pins}
        moved = {m: state.current or "" for m in live
                 if m not in pinned and state.current != version}
        return VersionChanges(moved, pinned)

    # -- mounting ---------------------------------------------------------------------------

    def current_record(self, name: str, version: str | None = None) -> InstallRecord:
        """The record of ``version`` (or the current one) of an installed server."""
        wanted = version or self.store.state(name).current
        record = self.store.record(name, wanted) if wanted else None
        if record is None:
            what = f"{name} {wanted}" if wanted else name
            raise InstallError(f"{what} is not installed")
        return record

    def installed_rows(self) -> list[dict[str, object]]:
        """Every installed version, newest first per server: what ``vmcp installed`` lists."""
        rows: list[dict[str, object]] = []
        for name in self.store.names():
            state = self.store.state(name)
            versions = self.mount_versions(name)
            for record in reversed(self.store.versions(name)):
                rows.append({
                    "name": name, "version": record.version, "method": record.method,
                    "source": record.source, "current": record.version == state.current,
                    "previous": record.version == state.previous,
                    "mounts": [m for m, v in versions.items() if v == record.version],
                    "pinned": [m for m, v in versions.items()
                               if v == record.version and m in state.pins],
                })
        return rows

    def mounts_of(self, name: str) -> list[str]:
        """The mount ids that still use the server (ids removed from the table are dropped)."""
        state = self.store.state(name)
        entries = self.table.entries()
        return [m for m in state.mounts if m in entries]

    def mount_versions(self, name: str) -> dict[str, str]:
        """Each mount of the server and the version it runs: its pin, else the current one."""
        state = self.store.state(name)
        return {m: state.pins.get(m, state.current or "") for m in self.mounts_of(name)}

    def server_of(self, mount_id: str) -> str:
        """The installed server a mount runs.

        :raises InstallError: no installed server is mounted under that id.
        """
        for name in self.store.names():
            if mount_id in self.mounts_of(name):
                return name
        raise InstallError(f"{mount_id!r} is not a mount of an installed server "
                           "(see `vmcp installed`)")

    def mount(
        self,
        name: str,
        values: Mapping[str, str],
        mount_id: str | None = None,
        version: str | None = None,
        pin: bool = False,
    ) -> str:
        """Add the server to the mount table at ``version`` (the current one by default);
        return the mount id. The mount is pinned when asked, or when ``version`` is not the
        current one (the other mounts keep following the current version).

        :raises InstallError: it is mounted already (without ``mount_id``), the id is used by
            another server, or a required variable has no value.
        """
        record = self.current_record(name, version)
        state = self.store.state(name)
        live = self.mounts_of(name)
        mount_id = self.choose_mount_id(name, mount_id)
        self.table.put(mount_id, mount_entry(record, values))
        state.mounts = [*live, mount_id] if mount_id not in live else live
        if pin or record.version != state.current:
            state.pins[mount_id] = record.version
        else:
            state.pins.pop(mount_id, None)
        self.store.save_state(state)
        return mount_id

    def pin(self, mount_id: str, version: str | None = None) -> tuple[str, str]:
        """Hold a mount at ``version`` (the one it runs by default), switching it to that
        version; return (server, version).

        :raises InstallError: the mount is not of an installed server, or the version is
            not installed.
        """
        name = self.server_of(mount_id)
        record = self.current_record(name, version or self.mount_versions(name)[mount_id])
        self._relaunch(mount_id, record, {})
        state = self.store.state(name)
        state.pins[mount_id] = record.version
        self.store.save_state(state)
        return name, record.version

    def unpin(self, mount_id: str) -> tuple[str, str]:
        """Let a mount follow the current version again, switching it to that version;
        return (server, version).

        :raises InstallError: the mount is not of an installed server.
        """
        name = self.server_of(mount_id)
        record = self.current_record(name)
        self._relaunch(mount_id, record, {})
        state = self.store.state(name)
        state.pins.pop(mount_id, None)
        self.store.save_state(state)
        return name, record.version

    def choose_mount_id(self, name: str, wanted: str | None = None) -> str:
        """The id a new mount of ``name`` gets: ``wanted``, or one derived from the name.

        :raises InstallError: it is mounted already (and no id is given), or ``wanted`` is
            used by another server.
        """
        live = self.mounts_of(name)
        if wanted is None:
            if live:
                raise InstallError(
                    f"{name} is mounted already as {', '.join(live)} (use --id for another)"
                )
            return self.table.free_id(mount_id_for(name))
        if wanted in self.table.entries() and wanted not in live:
            raise InstallError(f"mount id {wanted!r} is used by another server")
        return wanted

    def switch_mounts(self, name: str, values: Mapping[str, str]) -> list[str]:
        """Point every mount of the server at its current version, keeping the user's settings
        (prefix, timeouts...) and the variable values each mount already has."""
        record = self.current_record(name)
        pins = self.store.state(name).pins
        switched = []
        for mount_id in self.mounts_of(name):
            if mount_id not in pins:
                self._relaunch(mount_id, record, values)
                switched.append(mount_id)
        return switched

    def _relaunch(self, mount_id: str, record: InstallRecord, values: Mapping[str, str]) -> None:
        """Point one mount at ``record``, keeping its own settings and variable values."""
        old = self.table.entries()[mount_id]
        new = mount_entry(record, values, old.get("env") or {})
        kept = {k: v for k, v in old.items() if k not in LAUNCH_KEYS}
        self.table.put(mount_id, {**kept, **new})

    def unmount(self, mount_id: str) -> str | None:
        """Remove a mount; return the installed server that used it, if one did.

        :raises InstallError: there is no such mount.
        """
        if not self.table.remove(mount_id):
            raise InstallError(f"no mount {mount_id!r} in {self.table.path}")
        for name in self.store.names():
            state = self.store.state(name)
            if mount_id in state.mounts:
                state.mounts.remove(mount_id)
                state.pins.pop(mount_id, None)
                self.store.save_state(state)
                return name
        return None

    # -- removing ---------------------------------------------------------------------------

    def uninstall(self, name: str, version: str | None = None, force: bool = False) -> list[str]:
        """Remove one version (or all); return the versions removed.

        Refused while the version is the one mounted, unless ``force``, which unmounts it.
        """
        records = self.store.versions(name)
        if version is not None and all(r.version != version for r in records):
            raise InstallError(f"{name} {version} is not installed")
        doomed = [r.version for r in records if version is None or r.version == version]
        using = [m for m, v in self.mount_versions(name).items() if v in doomed]
        state = self.store.state(name)
        if using:
            if not force:
                raise InstallError(
                    f"{name} is mounted as {', '.join(using)}; unmount it or use --force"
                )
            for mount_id in using:
                self.table.remove(mount_id)
                state.pins.pop(mount_id, None)
            state.mounts = [m for m in state.mounts if m not in using]
        for v in doomed:
            self.store.remove_version(name, v)
        left = [r.version for r in records if r.version not in doomed]
        if not left:
            self.store.remove_server(name)
            return doomed
        if state.current in doomed:
            fallback = state.previous if state.previous in left else None
            state.current = fallback or max(left, key=version_key)
        if state.previous in doomed or state.previous == state.current:
            state.previous = None
        self.store.save_state(state)
        return doomed
