"""The namespace: every mount's names and URIs, as front clients see them.

A :class:`Namespace` is an immutable snapshot built from the mounts that are up (or warm:
serving remembered lists, see :mod:`vmcp.gateway.warmcatalog`), in mount order. Tools and
prompts get ``<prefix><sep><name>`` (after the mount's overrides, and shortened to an alias
when over the name budget); resource URIs pass unchanged unless an
earlier mount owns the same URI, in which case the later one's is aliased reversibly.
Rebuilt whenever a mount comes, goes or changes a list; never on the request path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from vmcp.gateway.aliases import shorten
from vmcp.gateway.overrides import overridden, shown_name
from vmcp.gateway.uris import alias, template_regex, unalias
from vmcp.registry.mount import Mount

log = logging.getLogger("vmcp.gateway")

Route = tuple[str, str]  # (mount id, the backend's own name or URI)


class NameCollision(Exception):
    """A mount with an empty prefix exposes a name another mount already uses."""


class _Taken:
    """The names an alias must avoid: those exposed so far, and every full name that fits."""

    __slots__ = ("fitting", "names")

    def __init__(self, names: dict[str, Route], fitting: set[str]) -> None:
        self.names, self.fitting = names, fitting

    def __contains__(self, name: object) -> bool:
        return name in self.names or name in self.fitting


class Namespace:
    """Exposed lists and the routes back to their mounts."""

    def __init__(self, mounts: Iterable[Mount], separator: str, max_name: int = 64,
                 withheld: Mapping[str, frozenset[str]] | None = None) -> None:
        self.separator = separator
        #: mount id -> tools left out (their definitions changed since pinned)
        self.withheld = withheld or {}
        self.max_name = max_name
        self.tools: dict[str, Route] = {}
        self.prompts: dict[str, Route] = {}
        self.resources: dict[str, Route] = {}
        self.tool_list: list[dict[str, Any]] = []
        self.prompt_list: list[dict[str, Any]] = []
        self.resource_list: list[dict[str, Any]] = []
        self.template_list: list[dict[str, Any]] = []
        #: the parallel route of every list item, for visibility filtering
        self.list_routes: dict[str, list[Route]] = {
            "tools": [], "prompts": [], "resources": [], "resource_templates": []}
        self.uri_owner: dict[str, str] = {}
        self.templates: list[tuple[re.Pattern[str], str, str]] = []
        self.template_owner: dict[str, str] = {}
        self.resource_mounts: list[str] = []
        self.collisions: dict[str, str] = {}
        #: exposed name -> the full name it shortens (only names over the budget)
        self.aliases: dict[str, str] = {}
        up = [mount for mount in mounts if mount.state == "up" or mount.warm]
        #: (start of its names, mount id, every tool it lists) of each mount forwarding the
        #: tool names it does not list
        self.unlisted = [
            (f"{mount.config.exposed_prefix}{separator}" if mount.config.exposed_prefix else "",
             mount.mount_id, frozenset(tool.get("name") for tool in mount.catalog["tools"]))
            for mount in up if mount.config.unlisted_tools == "forward"]
        shown = {kind: [self._shown(mount, kind) for mount in up] for kind in ("tools", "prompts")}
        taken = {
            kind: _Taken(names, {full for entries in per_mount for full, _, _ in entries
                                 if len(full) <= max_name})
            for (kind, per_mount), names in zip(shown.items(), (self.tools, self.prompts),
                                                strict=True)
        }
        owners: dict[str, dict[str, str]] = {"tools": {}, "prompts": {}}
        for index, mount in enumerate(up):
            for kind, items in (("tools", self.tool_list), ("prompts", self.prompt_list)):
                self._add_named(mount.mount_id, kind, shown[kind][index], items,
                                taken[kind], owners[kind])
            self._add_resources(mount)

    def _shown(self, mount: Mount, kind: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(full exposed name, backend name, item as shown) of one mount's tools or prompts."""
        config = mount.config
        overrides = config.tools if kind == "tools" else config.prompts
        prefix = config.exposed_prefix
        withheld = self.withheld.get(mount.mount_id, ()) if kind == "tools" else ()
        entries = []
        for item in mount.catalog[kind]:
            name = item.get("name")
            if not isinstance(name, str) or name in withheld:
                continue
            shown = overridden(overrides, item)
            if shown is None:
                continue
            local = shown_name(overrides, name)
            full = f"{prefix}{self.separator}{local}" if prefix else local
            entries.append((full, name, shown))
        return entries

    def _add_named(
        self,
        mid: str,
        kind: str,
        entries: list[tuple[str, str, dict[str, Any]]],
        items: list[dict[str, Any]],
        taken: _Taken,
        owners: dict[str, str],
    ) -> None:
        """Add one mount's tools or prompts; ``owners`` maps full names to their mounts."""
        names = taken.names
        for full, name, item in entries:
            if full in owners:
                problem = f"{kind[:-1]} name {full!r} collides with mount {owners[full]!r}"
                self.collisions.setdefault(mid, problem)
                continue
            owners[full] = mid
            exposed = shorten(full, self.max_name, taken)
            if exposed != full:
                self.aliases[exposed] = full
            names[exposed] = (mid, name)
            items.append(item if exposed == item["name"] else {**item, "name": exposed})
            self.list_routes[kind].append((mid, name))

    def unlisted_route(self, name: str) -> Route | None:
        """Where a tool name no mount exposes goes (``unlisted_tools = "forward"``).

        To the one forwarding mount whose prefix starts it, when its remainder is a name that
        mount does not list at all (a listed tool that is hidden, renamed or withheld stays
        unknown); when several mounts could take it, to none.
        """
        found = [(mount_id, name[len(start):]) for start, mount_id, listed in self.unlisted
                 if name.startswith(start) and name[len(start):]
                 and name[len(start):] not in listed]
        return found[0] if len(found) == 1 else None

    def _add_resources(self, mount: Mount) -> None:
        mid = mount.mount_id
        catalog = mount.catalog
        if "resources" in mount.capabilities:
            self.resource_mounts.append(mid)
        for item in catalog["resources"]:
            uri = item.get("uri")
            if not isinstance(uri, str):
                continue
            front = self.front_uri(mid, uri, claim=True)
            self.resources[front] = (mid, uri)
            self.resource_list.append(item if front == uri else {**item, "uri": front})
            self.list_routes["resources"].append((mid, uri))
        for item in catalog["resource_templates"]:
            template = item.get("uriTemplate")
            if not isinstance(template, str):
                continue
            self.templates.append((template_regex(template), mid, template))
            self.template_owner.setdefault(template, mid)
            self.template_list.append(item)
            self.list_routes["resource_templates"].append((mid, template))

    # -- URIs -------------------------------------------------------------------------------

    def front_uri(self, mount_id: str, uri: str, claim: bool = False) -> str:
        """The URI a front client sees for a backend URI of ``mount_id``."""
        owner = self.uri_owner.get(uri)
        if owner is None:
            if claim:
                self.uri_owner[uri] = mount_id
            return uri
        return uri if owner == mount_id else alias(mount_id, uri)

    def route_uri(self, uri: str) -> Route | None:
        """The mount and backend URI a front URI refers to, or None when nobody serves it."""
        route = self.resources.get(uri)
        if route is not None:
            return route
        aliased = unalias(uri)
        if aliased is not None:
            return aliased if aliased[0] in self.resource_mounts else None
        owner = self.uri_owner.get(uri)
        if owner is not None:
            return owner, uri
        for pattern, mount_id, _template in self.templates:
            if pattern.match(uri):
                return mount_id, uri
        if len(self.resource_mounts) == 1:
            return self.resource_mounts[0], uri
        return None

    def map_contents(self, mount_id: str, items: Any) -> None:
        """Rewrite, in place, the URIs of ``resource_link`` and embedded resources."""
        if not isinstance(items, list):
            return
        for item in items:
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            if kind == "resource_link":
                target = item
            elif kind == "resource" and isinstance(item.get("resource"), dict):
                target = item["resource"]
            else:
                continue
            uri = target.get("uri")
            if isinstance(uri, str):
                front = self.front_uri(mount_id, uri)
                if front != uri:
                    target["uri"] = front

    def map_resource_contents(self, mount_id: str, contents: Any) -> None:
        """Rewrite, in place, the ``uri`` of each item of a ``resources/read`` result."""
        if not isinstance(contents, list):
            return
        for item in contents:
            if isinstance(item, dict) and isinstance(item.get("uri"), str):
                front = self.front_uri(mount_id, item["uri"])
                if front != item["uri"]:
                    item["uri"] = front
