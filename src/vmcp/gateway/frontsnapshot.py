"""The front snapshot: what the stdio client was first shown, kept for the next fast start.

When this process was entered as a stdio ``vmcp start`` (:data:`vmcp.faststart.LAUNCH`)
and the warm catalog is on, the stdio session tells the :class:`SnapshotKeeper` the
``initialize`` result it gave and each first page of ``tools/list``. A page that holds
every mount's tools (each mount up, or warm with its tools kept) is written to
``$VMCP_HOME/cache/front/`` with the protocol version the client asked for, when it differs
from what was written last, and only while the files the key covers are as they were when
the process started: a view built before a change on disk (a persona, a pin, an approval)
is never kept under the key of the state after it.

Once the backends were spawned, the keeper also records under the same key how the stdio
ones were (:meth:`SnapshotKeeper.spawned`), for the next start's head start.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmcp import faststart, headstart
from vmcp.config import LimitSettings
from vmcp.fileutil import atomic_write_text

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway

log = logging.getLogger("vmcp.gateway")

#: snapshot files kept (one per command line and environment); the oldest go first
KEEP = 16


class SnapshotKeeper:
    """Writes the front snapshot of one stdio session (a session observer)."""

    def __init__(self, gateway: Gateway, start: faststart.Launch) -> None:
        self.gateway = gateway
        self.start = start
        self._initialize: tuple[str, dict[str, Any]] | None = None
        self._shown: dict[str, Any] | None = None

    @classmethod
    def of_launch(cls, gateway: Gateway) -> SnapshotKeeper | None:
        """The keeper of this process's stdio start; None when it was not one."""
        start = faststart.LAUNCH
        return None if start is None else cls(gateway, start)

    def initialized(self, requested: Any, result: dict[str, Any]) -> None:
        """The session answered ``initialize`` (the client asked for ``requested``)."""
        self._initialize = (requested, result) if isinstance(requested, str) else None
        self._shown = None

    def listed(self, result: dict[str, Any]) -> None:
        """The session answered a first page of ``tools/list`` with ``result``."""
        if self._initialize is None or result == self._shown or not self._complete():
            return
        self._shown = result
        requested, initialize = self._initialize
        snapshot = self._snapshot()
        entries = snapshot.setdefault("entries", {})
        entry = {"initialize": initialize, "tools": result}
        if entries.get(requested) == entry:  # what the fast start served, most often
            return
        entries[requested] = entry
        self._write(snapshot)

    def spawned(self) -> None:
        """The backends of the start were spawned: keep how the stdio ones were (from the
        configuration), for the next start's head start (:mod:`vmcp.headstart`)."""
        gateway = self.gateway
        if not gateway.warm.enabled:
            return
        # A plugin that adds to the backends' environment (a credential, most often) would
        # make every head start's launch differ from the gateway's: each would be spawned
        # for nothing, then killed.
        spawns = [] if gateway.prepare_hook().get_hookimpls() else [
            headstart.template(config.command, config.args, config.cwd or None, config.env)
            for mount in gateway.mounts.values()
            if (config := mount.config).transport == "stdio" and config.command
            and config.isolation == "shared" and config.limits == LimitSettings()
            for _ in mount.replicas]
        snapshot = self._snapshot()
        if snapshot.get(headstart.SPAWNS, []) == spawns:
            return
        snapshot[headstart.SPAWNS] = spawns
        self._write(snapshot)

    def _snapshot(self) -> dict[str, Any]:
        """The snapshot of this start as kept now (a new one when there is none)."""
        return faststart.load(self.start) or {"key": self.start.key, "entries": {}}

    def _write(self, snapshot: dict[str, Any]) -> None:
        start = self.start
        if faststart.view_key(start.name, start.home, start.config) != start.key:
            log.debug("front snapshot not kept: its files changed since the start")
            return
        path = Path(start.path)
        try:
            # the names hash the VMCP_* environment, which may hold secrets: a private folder
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(snapshot, ensure_ascii=False, sort_keys=True),
                              0o600)
        except (OSError, TypeError, ValueError) as exc:
            log.warning("could not keep the front snapshot: %s", exc)
            return
        _trim(path.parent)

    def _complete(self) -> bool:
        """True when every enabled mount's tools are in the namespace (live or kept)."""
        gateway = self.gateway
        if not gateway.warm.enabled:
            return False
        mounts = gateway.mounts
        return all(
            (mount := mounts.get(config.id)) is not None and gateway.warm.shows_tools(mount)
            for config in gateway.config.servers.values() if config.enabled)


def _trim(folder: Path) -> None:
    """Keep the :data:`KEEP` most recently written snapshots."""
    try:
        files = sorted((path.stat().st_mtime_ns, path) for path in folder.glob("*.json"))
        for _, old in files[:-KEEP]:
            old.unlink()
    except OSError as exc:
        log.debug("could not trim the front snapshots: %s", exc)
