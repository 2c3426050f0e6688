"""The access policy: personas compiled into a fast ``visible(persona, mount, kind, name)``.

Patterns are compiled once into one regular expression per rule list, and every decision on
a tool or prompt is remembered, so a repeated check is one dictionary lookup. The policy is
rebuilt (never mutated) when a persona changes; only the per-mount sets of read-only tools
are replaced when a mount's catalog changes, which forgets the remembered decisions.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vmcp.persona.model import Persona, ServerRules


def _any_of(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching a name that any ``fnmatch`` pattern matches; None for no pattern."""
    parts = [fnmatch.translate(p) for p in patterns]
    return re.compile("|".join(f"(?:{part})" for part in parts)) if parts else None


@dataclass(frozen=True, slots=True)
class _ServerAccess:
    allow_tools: re.Pattern[str] | None
    deny_tools: re.Pattern[str] | None
    allow_prompts: re.Pattern[str] | None
    deny_prompts: re.Pattern[str] | None
    read_only: bool

    @classmethod
    def compile(cls, rules: ServerRules, read_only: bool) -> _ServerAccess:
        return cls(
            _any_of(rules.allow_tools), _any_of(rules.deny_tools),
            _any_of(rules.allow_prompts), _any_of(rules.deny_prompts),
            read_only or rules.read_only,
        )


def _passes(name: str, allow: re.Pattern[str] | None, deny: re.Pattern[str] | None) -> bool:
    if deny is not None and deny.match(name):
        return False
    return allow is None or allow.match(name) is not None


class Policy:
    """What each persona may see, answered fast.

    A persona that is not known (deleted, or its file unreadable) sees nothing.
    """

    def __init__(self, personas: Mapping[str, Persona]) -> None:
        self.personas = dict(personas)
        self._access: dict[str, dict[str, _ServerAccess]] = {
            name: {
                server: _ServerAccess.compile(rules, persona.read_only)
                for server, rules in persona.servers.items()
            }
            for name, persona in personas.items()
        }
        self._read_only_tools: dict[str, frozenset[str]] = {}
        #: (persona, mount, kind, name) -> decision, for tools and prompts (names the
        #: catalogs bound; resource URIs are not remembered, templates make them unbounded)
        self._decided: dict[tuple[str, str, str, str], bool] = {}

    @property
    def read_only_tools(self) -> dict[str, frozenset[str]]:
        """Mount id -> the backend names of its read-only tools."""
        return self._read_only_tools

    @read_only_tools.setter
    def read_only_tools(self, value: dict[str, frozenset[str]]) -> None:
        self._read_only_tools = value
        self._decided = {}

    def sees_server(self, persona: str, mount_id: str) -> bool:
        """True when ``persona`` has ``mount_id`` enabled."""
        servers = self._access.get(persona)
        return servers is not None and mount_id in servers

    def visible(self, persona: str, mount_id: str, kind: str, name: str) -> bool:
        """May ``persona`` see and use the item ``name`` of ``kind`` on ``mount_id``?

        ``kind`` is ``tool``, ``prompt``, ``resource`` or ``resource_template``; resources
        and templates are visible on every enabled server.
        """
        if kind != "tool" and kind != "prompt":
            servers = self._access.get(persona)
            return servers is not None and mount_id in servers
        key = (persona, mount_id, kind, name)
        decided = self._decided.get(key)
        if decided is None:
            decided = self._decided[key] = self._decide(persona, mount_id, kind, name)
        return decided

    def _decide(self, persona: str, mount_id: str, kind: str, name: str) -> bool:
        access = self._access.get(persona, {}).get(mount_id)
        if access is None:
            return False
        if kind == "prompt":
            return _passes(name, access.allow_prompts, access.deny_prompts)
        if access.read_only and name not in self._read_only_tools.get(mount_id, ()):
            return False
        return _passes(name, access.allow_tools, access.deny_tools)
