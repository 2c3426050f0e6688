"""Pinned tool definitions: a backend that changes a tool under the model is caught.

The first time a mount's tool is seen, its definition (name, title, description, schemas and
annotations) is pinned in ``$VMCP_HOME/pins/<mount>.json``. When the backend later shows a
different definition, the mount's ``pinning`` decides: ``enforce`` withholds the tool (it is
unknown to every caller) until ``vmcp approve MOUNT [TOOL]``; ``warn`` shows it and flags it;
``off`` does neither. The changed definition waits in the same file under ``pending``, so
``vmcp approve`` works with or without a running gateway and ``vmcp info`` can show the
difference. Checked when the namespace is rebuilt, never on the request path.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vmcp.fileutil import atomic_write_text
from vmcp.registry.mount import Mount

log = logging.getLogger("vmcp.pinning")

#: the parts of a tool definition that are pinned
PINNED_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")


def definition(tool: dict[str, Any]) -> dict[str, Any]:
    """The pinned parts of a tool."""
    return {key: tool[key] for key in PINNED_FIELDS if key in tool}


def digest(tool: dict[str, Any]) -> str:
    """A stable digest of a tool's pinned parts."""
    text = json.dumps(definition(tool), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def differences(pinned: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The pinned fields whose values differ."""
    return [key for key in PINNED_FIELDS if pinned.get(key) != current.get(key)]


class PinStore:
    """The pins of every mount, one JSON file each, kept in memory once read."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files: dict[str, dict[str, dict[str, Any]]] = {}

    def _path(self, mount_id: str) -> Path:
        return self.folder / f"{mount_id}.json"

    def read(self, mount_id: str) -> dict[str, dict[str, Any]]:
        """``{"pinned": {tool: definition}, "pending": {tool: definition}}`` of one mount."""
        cached = self._files.get(mount_id)
        if cached is not None:
            return cached
        try:
            data = json.loads(self._path(mount_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as exc:
            # A damaged pin file must not un-pin: every tool of the mount counts as changed.
            log.error("pins of %s unreadable (%s); its tools count as changed", mount_id, exc)
            data = {"pinned": {}, "pending": {}, "damaged": True}
        data.setdefault("pinned", {})
        data.setdefault("pending", {})
        self._files[mount_id] = data
        return data

    def write(self, mount_id: str) -> None:
        """Save one mount's pins (atomically)."""
        data = self._files[mount_id]
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._path(mount_id), json.dumps(
            {"pinned": data["pinned"], "pending": data["pending"]}, indent=2, sort_keys=True))

    def forget(self, mount_id: str) -> None:
        """Drop the in-memory copy, so the next read sees the file (changed elsewhere)."""
        self._files.pop(mount_id, None)

    def approve(self, mount_id: str, tool: str | None = None) -> list[str]:
        """Pin the pending definitions of one tool, or of every tool; the names approved."""
        self.forget(mount_id)
        data = self.read(mount_id)
        names = [name for name in data["pending"] if tool is None or name == tool]
        for name in names:
            data["pinned"][name] = data["pending"].pop(name)
        if names:
            self.write(mount_id)
        return names


class Pinning:
    """The pinning decisions of one gateway: which tools are withheld or flagged, and why."""

    def __init__(self, store: PinStore) -> None:
        self.store = store
        #: mount id -> tool -> the fields that changed (withheld ones)
        self.withheld: dict[str, dict[str, list[str]]] = {}
        #: mount id -> tool -> the fields that changed (shown but flagged)
        self.flagged: dict[str, dict[str, list[str]]] = {}
        self._logged: set[tuple[str, str, str]] = set()

    def check(self, mounts: Iterable[Mount]) -> dict[str, frozenset[str]]:
        """Compare every up mount's tools with their pins; the names withheld per mount."""
        self.withheld, self.flagged = {}, {}
        for mount in mounts:
            mode = mount.config.pinning
            if (mount.state != "up" and not mount.warm) or mode == "off":
                continue
            changed = self._check_mount(mount)
            if changed:
                (self.withheld if mode == "enforce" else self.flagged)[mount.mount_id] = changed
        return {mount_id: frozenset(tools) for mount_id, tools in self.withheld.items()}

    def _check_mount(self, mount: Mount) -> dict[str, list[str]]:
        mid = mount.mount_id
        data = self.store.read(mid)
        pinned, pending = data["pinned"], data["pending"]
        changed: dict[str, list[str]] = {}
        dirty = False
        for tool in mount.catalog["tools"]:
            name = tool.get("name")
            if not isinstance(name, str):
                continue
            current = definition(tool)
            old = pinned.get(name)
            if old is None and not data.get("damaged"):
                pinned[name] = current
                dirty = True
                continue
            if old == current:
                if pending.pop(name, None) is not None:
                    dirty = True
                continue
            fields = differences(old or {}, current)
            changed[name] = fields
            if pending.get(name) != current:
                pending[name] = current
                dirty = True
            key = (mid, name, digest(tool))
            if key not in self._logged:
                self._logged.add(key)
                action = ("withheld until `vmcp approve " + f"{mid} {name}`"
                          if mount.config.pinning == "enforce" else "shown, flagged")
                log.warning("mount %s: tool %s changed since it was pinned (%s); %s",
                            mid, name, ", ".join(fields), action)
        if dirty and not data.get("damaged"):
            self.store.write(mid)
        return changed

    def report(self, mount: Mount) -> dict[str, Any]:
        """What ``vmcp info`` shows: the mode and each changed tool, pinned and current."""
        data = self.store.read(mount.mount_id)
        withheld = self.withheld.get(mount.mount_id, {})
        flagged = self.flagged.get(mount.mount_id, {})
        changes = [
            {"tool": name, "state": "withheld" if name in withheld else "flagged",
             "fields": fields, "pinned": data["pinned"].get(name),
             "current": data["pending"].get(name)}
            for name, fields in {**flagged, **withheld}.items()
        ]
        return {"mode": mount.config.pinning, "pinned": len(data["pinned"]), "changes": changes}
