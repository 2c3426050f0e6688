"""What one mount lets the cache keep, and for how long (from its configuration).

Time to live of a method, most specific first: the mount's ``cache_method_ttl``, the mount's
``cache_ttl``, ``[cache] method_ttl``, ``[cache] ttl``. A time to live of 0 means the method
is never cached for that mount. Lists and ``completion/complete`` are cached whenever their
time to live is above 0; ``tools/call`` only for the tools named by ``cache_tools`` and
``resources/read`` only for the URIs matched by ``cache_resources`` (fnmatch patterns over
the backend's own names and URIs).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from vmcp.cache.keys import fingerprint
from vmcp.config import CACHEABLE_METHODS, CacheSettings, MountConfig


def _patterns(patterns: list[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(fnmatch.translate(p) for p in patterns))


@dataclass(frozen=True, slots=True)
class MountRules:
    """The cache rules of one mount configuration."""

    config: MountConfig
    fingerprint: str
    #: method -> time to live in seconds (only methods cached for this mount)
    ttl: dict[str, float]
    tools: re.Pattern[str] | None
    resources: re.Pattern[str] | None

    @classmethod
    def build(cls, mount: MountConfig, settings: CacheSettings) -> MountRules:
        """Resolve the rules of ``mount`` under the ``[cache]`` settings."""
        tools = _patterns(mount.cache_tools)
        resources = _patterns(mount.cache_resources)
        ttl: dict[str, float] = {}
        for method in CACHEABLE_METHODS:
            if (method == "tools/call" and tools is None) or (
                method == "resources/read" and resources is None
            ):
                continue
            value = mount.cache_method_ttl.get(method)
            if value is None:
                value = mount.cache_ttl
            if value is None:
                value = settings.method_ttl.get(method, settings.ttl)
            if value > 0:
                ttl[method] = value
        return cls(mount, fingerprint(mount), ttl, tools, resources)

    @property
    def public(self) -> bool:
        """True when entries are shared by every persona."""
        return self.config.cache_public

    def request_ttl(self, method: str, params: dict[str, Any]) -> float | None:
        """The time to live of a routed request's result, or None when it is not cacheable.

        Requests carrying a progress token and task-augmented calls are never cached.
        """
        ttl = self.ttl.get(method)
        if ttl is None:
            return None
        meta = params.get("_meta")
        if isinstance(meta, dict) and "progressToken" in meta:
            return None
        if method == "tools/call":
            name = params.get("name")
            if "task" in params or not isinstance(name, str) or not self.tools.match(name):  # type: ignore[union-attr]
                return None
        elif method == "resources/read":
            uri = params.get("uri")
            if not isinstance(uri, str) or not self.resources.match(uri):  # type: ignore[union-attr]
                return None
        elif method != "completion/complete":
            return None
        return ttl
