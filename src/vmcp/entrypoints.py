"""The installed entry points of the ``vmcp`` and ``vmcp.*`` groups, read once per path.

Finding entry points opens every installed distribution's metadata, and ``vmcp start``
needs them more than once before its first backend is spawned (the hook plugins to load,
the driver names the configuration is checked against). They are read once for each
``sys.path``: the installed set is taken as fixed while the path is, as stevedore's own
cache of the drivers takes it.
"""

from __future__ import annotations

import sys
from importlib import metadata

#: the group of hook plugins; drivers are in its subgroups (``vmcp.transports`` ...)
HOOK_GROUP = "vmcp"

_read: tuple[tuple[str, ...], metadata.EntryPoints] | None = None


def is_vmcp_group(group: str) -> bool:
    """True for ``vmcp`` and every ``vmcp.<kind>`` group."""
    return group == HOOK_GROUP or group.startswith(HOOK_GROUP + ".")


def vmcp_entry_points() -> metadata.EntryPoints:
    """Every entry point of the ``vmcp`` groups, as :func:`importlib.metadata.entry_points`
    finds them (a distribution found twice on the path counts once)."""
    global _read
    path = tuple(sys.path)
    if _read is None or _read[0] != path:
        every = metadata.entry_points()
        _read = path, metadata.EntryPoints(
            ep for group in sorted(every.groups) if is_vmcp_group(group)
            for ep in every.select(group=group))
    return _read[1]
