"""The plugin kernel: hook plugins (pluggy), driver lookup (stevedore) and the inventory.

Two kinds of extension point, both found through installed distributions' entry points:

* **hook plugins**, group ``vmcp``: modules whose ``@hookimpl`` functions take part in every
  request (see :mod:`vmcp.hookspecs`). Each is loaded on its own; one that fails to import is
  recorded as a :class:`PluginFailure` and the others still load.
* **drivers**, groups ``vmcp.transports``, ``vmcp.caches``, ``vmcp.balancers``,
  ``vmcp.repositories`` and ``vmcp.auth``: one class each, chosen by name from the
  configuration with :func:`load_driver`.

``VMCP_DISABLE_PLUGINS=name1,name2`` keeps the hook plugins with those entry-point names
from loading (the escape hatch when a broken plugin gets in the way).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import click
import pluggy
from stevedore import DriverManager
from stevedore.exception import MultipleMatches, NoMatches

from vmcp import hookspecs
from vmcp.drivernames import DRIVER_GROUPS, install_hint
from vmcp.entrypoints import HOOK_GROUP, is_vmcp_group, vmcp_entry_points

DISABLE_ENV = "VMCP_DISABLE_PLUGINS"


class PluginError(Exception):
    """A plugin or driver could not be used; the message names the distribution and cause."""


class DriverNotFound(PluginError):
    """No installed distribution provides the driver asked for."""


@dataclass(frozen=True)
class PluginFailure:
    """One entry point that could not be loaded or used."""

    distribution: str
    entry_point: str  # "group:name"
    error: str  # "ExceptionType: message"


@dataclass
class PluginRecord:
    """What one installed distribution contributes to vmcp, as ``vmcp plugins list`` shows it."""

    name: str
    version: str
    drivers: list[str] = field(default_factory=list)  # "group:name"
    hooks: list[str] = field(default_factory=list)
    status: str = "ok"  # "ok", "disabled" or "failed: reason"

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-ready data."""
        return asdict(self)


class VmcpPluginManager(pluggy.PluginManager):
    """pluggy's manager for project ``vmcp``, remembering where each plugin came from.

    ``distributions`` maps a registered plugin's name to its distribution, ``disabled``
    does the same for the entry points blocked by ``VMCP_DISABLE_PLUGINS``; ``failures``
    lists the hook plugins that failed to load, register or add their commands.
    """

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.distributions: dict[str, str] = {}
        self.disabled: dict[str, str] = {}
        self.failures: list[PluginFailure] = []

    def load_entry_points(self, disabled: frozenset[str] = frozenset()) -> None:
        """Load and register every ``vmcp`` hook plugin, each guarded on its own.

        The entry points come from :func:`~vmcp.entrypoints.vmcp_entry_points` (read once
        for the driver names too); the names of only the distributions that provide them
        are read.
        """
        for ep in vmcp_entry_points().select(group=HOOK_GROUP):
            dist_name = _dist_name(ep)
            label = f"{ep.group}:{ep.name}"
            if ep.name in disabled:
                self.disabled[ep.name] = dist_name
                continue
            try:
                plugin = ep.load()
                self.register(plugin, name=ep.name)
                self._check_hook_names(plugin)
            except Exception as exc:
                self.failures.append(PluginFailure(dist_name, label, describe(exc)))
                continue
            self.distributions[ep.name] = dist_name

    def _check_hook_names(self, plugin: object) -> None:
        """Reject a plugin implementing a ``vmcp_`` hook that has no spec (a typo, say)."""
        unknown = [
            caller.name
            for caller in self.get_hookcallers(plugin) or []
            if not caller.has_spec()
            and any(not impl.optionalhook for impl in caller.get_hookimpls())
        ]
        if unknown:
            self.unregister(plugin)
            raise PluginError(f"unknown hook {', '.join(sorted(unknown))}")

    def hooks_of(self, plugin_name: str) -> list[str]:
        """The names of the hook specs the plugin registered as ``plugin_name`` implements."""
        plugin = self.get_plugin(plugin_name)
        if plugin is None:
            return []
        return sorted(c.name for c in self.get_hookcallers(plugin) or [] if c.has_spec())


def describe(exc: BaseException) -> str:
    """``ExceptionType: message``, the way every plugin failure is reported."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def vmcp_distributions() -> Iterator[metadata.Distribution]:
    """Installed distributions with entry points in ``vmcp`` or ``vmcp.*``.

    A distribution found twice on the path counts once: the first one found wins, as it does
    for imports.
    """
    seen: set[str] = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name or _normalized(name) in seen:
            continue
        seen.add(_normalized(name))
        if any(is_vmcp_group(ep.group) for ep in dist.entry_points):
            yield dist


def _disabled_names() -> frozenset[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


@functools.cache
def get_plugin_manager() -> VmcpPluginManager:
    """The process-wide plugin manager, with every installed hook plugin loaded."""
    pm = VmcpPluginManager()
    pm.load_entry_points(_disabled_names())
    return pm


def register_plugin_commands(cli: click.Group) -> None:
    """Let each hook plugin add its commands to ``cli``, one plugin at a time.

    A plugin that raises, or that replaces a command already present (loaded or, in a
    group that imports its commands lazily, only listed), is recorded as a failure (and its
    replacement undone); every failure gets one warning on stderr.
    """
    pm = get_plugin_manager()
    listing = click.Context(cli)
    #: the commands a lazy group names without having imported them (plugins may add some)
    lazy: dict[str, str] = getattr(cli, "lazy", {})
    for name, plugin in pm.list_name_plugin():
        others = [p for p in pm.get_plugins() if p is not plugin]
        caller = pm.subset_hook_caller("vmcp_register_commands", remove_plugins=others)
        before = dict(cli.commands)
        before_lazy = dict(lazy)
        taken = cli.list_commands(listing)
        try:
            caller(cli=cli)
        except Exception as exc:
            cli.commands.clear()
            cli.commands.update(before)
            lazy.clear()
            lazy.update(before_lazy)
            _fail_registered(pm, name, describe(exc))
            continue
        for command_name in taken:
            command = before.get(command_name)
            if (cli.commands.get(command_name) is command
                    and lazy.get(command_name) == before_lazy.get(command_name)):
                continue
            if command_name in before_lazy:
                lazy[command_name] = before_lazy[command_name]
            if command is None:  # not loaded yet: the group's own command stays in force
                cli.commands.pop(command_name, None)
            else:
                cli.add_command(command, command_name)
            _fail_registered(pm, name, f"command {command_name!r} is already taken")
    for failure in pm.failures:
        click.echo(
            f"warning: plugin {failure.distribution} ({failure.entry_point}) failed: "
            f"{failure.error}",
            err=True,
        )


def _fail_registered(pm: VmcpPluginManager, name: str, error: str) -> None:
    dist = pm.distributions.get(name, "?")
    pm.failures.append(PluginFailure(dist, f"{HOOK_GROUP}:{name}", error))


def _dist_name(ep: metadata.EntryPoint) -> str:
    """The name of the distribution that declares ``ep``."""
    return ep.dist.metadata["Name"] if ep.dist is not None else "an unknown distribution"


def _distribution_of(group: str, name: str) -> str:
    for ep in vmcp_entry_points().select(group=group, name=name):
        if ep.dist is not None:
            return _dist_name(ep)
    return "an unknown distribution"


def _installed_names(group: str) -> list[str]:
    return sorted({ep.name for ep in vmcp_entry_points().select(group=group)})


def _not_found_message(kind: str, name: str) -> str:
    group = DRIVER_GROUPS[kind]
    installed = _installed_names(group)
    lines = [
        f"no driver {name!r} in {group}; installed: "
        + (", ".join(installed) if installed else "none")
    ]
    hint = install_hint(kind, name)
    if hint:
        lines.append(hint)
    return "\n".join(lines)


def load_driver(kind: str, name: str) -> type:
    """Return the driver class registered as ``name`` for ``kind`` (not an instance).

    :param kind: one of ``transports``, ``caches``, ``balancers``, ``repositories``, ``auth``.
    :raises DriverNotFound: no distribution provides it; the message lists installed ones.
    :raises PluginError: the kind is unknown, the name is provided twice, or the driver's
        module fails to import (the message names the distribution and the exception).
    """
    group = DRIVER_GROUPS.get(kind)
    if group is None:
        raise PluginError(
            f"unknown driver kind {kind!r}; expected one of {', '.join(DRIVER_GROUPS)}"
        )

    def failed(_manager: object, ep: metadata.EntryPoint, exc: BaseException) -> None:
        dist = _distribution_of(group, ep.name)
        raise PluginError(
            f"driver {group}:{ep.name} from {dist} failed to load: {describe(exc)}"
        ) from exc

    try:
        manager: DriverManager[Any] = DriverManager(
            group,
            name,
            invoke_on_load=False,
            on_load_failure_callback=failed,
            on_missing_entrypoints_callback=None,
        )
    except NoMatches as exc:
        raise DriverNotFound(_not_found_message(kind, name)) from exc
    except MultipleMatches as exc:
        providers = sorted(
            ep.dist.metadata["Name"]
            for ep in vmcp_entry_points().select(group=group, name=name)
            if ep.dist is not None
        )
        raise PluginError(
            f"driver {group}:{name} is provided more than once: {', '.join(providers)}"
        ) from exc
    return manager.driver


def inventory() -> list[PluginRecord]:
    """One record per installed distribution with ``vmcp`` entry points, sorted by name.

    Every driver entry point is loaded to find out whether it works; hook plugins are taken
    from :func:`get_plugin_manager`, which loaded them already.
    """
    pm = get_plugin_manager()
    records = []
    for dist in vmcp_distributions():
        dist_name = dist.metadata["Name"]
        record = PluginRecord(name=dist_name, version=dist.version or "?")
        errors: list[str] = []
        hook_names: list[str] = []
        for ep in sorted(dist.entry_points, key=lambda e: (e.group, e.name)):
            label = f"{ep.group}:{ep.name}"
            if ep.group == HOOK_GROUP:
                hook_names.append(ep.name)
                if pm.distributions.get(ep.name) == dist_name:
                    record.hooks.extend(pm.hooks_of(ep.name))
            elif is_vmcp_group(ep.group):
                record.drivers.append(label)
                error = _try_driver(ep)
                if error:
                    errors.append(f"{error} ({label})")
        errors.extend(
            f"{f.error} ({f.entry_point})" for f in pm.failures if f.distribution == dist_name
        )
        record.hooks = sorted(set(record.hooks))
        all_disabled = all(pm.disabled.get(n) == dist_name for n in hook_names)
        if errors:
            record.status = "failed: " + "; ".join(errors)
        elif hook_names and all_disabled and not record.drivers:
            record.status = "disabled"
        records.append(record)
    return sorted(records, key=lambda r: _normalized(r.name))


def _try_driver(ep: metadata.EntryPoint) -> str | None:
    """Load one driver entry point; return why it does not work, or None."""
    if ep.group not in DRIVER_GROUPS.values():
        return f"unknown entry-point group {ep.group!r}"
    try:
        ep.load()
    except Exception as exc:
        return describe(exc)
    return None
