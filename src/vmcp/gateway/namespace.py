"""The namespace: every mount's names and URIs, as front clients see them.

A :class:`Namespace` is an immutable snapshot built from the mounts that are up, in mount
order. Tools and prompts get ``<prefix><sep><name>``; resource URIs pass unchanged unless an
earlier mount owns the same URI, in which case the later one's is aliased reversibly.
Rebuilt whenever a mount comes, goes or changes a list; never on the request path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from vmcp.gateway.uris import alias, template_regex, unalias
from vmcp.registry.mount import Mount

log = logging.getLogger("vmcp.gateway")

Route = tuple[str, str]  # (mount id, the backend's own name or URI)


class NameCollision(Exception):
    """A mount with an empty prefix exposes a name another mount already uses."""


class Namespace:
    """Exposed lists and the routes back to their mounts."""

    def __init__(self, mounts: Iterable[Mount], separator: str) -> None:
        self.separator = separator
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
        for mount in mounts:
            if mount.state == "up":
                self._add(mount)

    def _exposed(self, mount: Mount, name: str) -> str:
        prefix = mount.config.exposed_prefix
        return f"{prefix}{self.separator}{name}" if prefix else name

    def _add(self, mount: Mount) -> None:
        mid = mount.mount_id
        catalog = mount.catalog
        for kind, names, items in (
            ("tools", self.tools, self.tool_list),
            ("prompts", self.prompts, self.prompt_list),
        ):
            for item in catalog[kind]:
                name = item.get("name")
                if not isinstance(name, str):
                    continue
                exposed = self._exposed(mount, name)
                if exposed in names:
                    other = names[exposed][0]
                    problem = f"{kind[:-1]} name {exposed!r} collides with mount {other!r}"
                    self.collisions.setdefault(mid, problem)
                    continue
                names[exposed] = (mid, name)
                items.append(item if exposed == name else {**item, "name": exposed})
                self.list_routes[kind].append((mid, name))
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
