"""The persona model: what one named persona may see and use."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vmcp.config import MOUNT_ID_RE

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,50}$")

#: which rule list of a server a pattern goes to
RuleKind = Literal["allow_tools", "deny_tools", "allow_prompts", "deny_prompts", "confirm_tools"]


def utcnow() -> datetime:
    """The current time, in UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


class ServerRules(BaseModel):
    """What a persona may use of one enabled server.

    Tool and prompt names are the server's own (unprefixed) and patterns are ``fnmatch``
    style (``*``, ``?``, ``[abc]``), case-sensitive. An empty allow list allows every name;
    a deny pattern always wins. ``read_only`` limits tools to the read-only ones.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)

    allow_tools: list[str] = Field(default_factory=list)
    deny_tools: list[str] = Field(default_factory=list)
    allow_prompts: list[str] = Field(default_factory=list)
    deny_prompts: list[str] = Field(default_factory=list)
    #: tools whose every call the caller must approve first (through an elicitation)
    confirm_tools: list[str] = Field(default_factory=list)
    #: every call of a tool that may be destructive must be approved too (see
    #: :func:`vmcp.gateway.approvals.harmless_tools`: all others may be)
    confirm_destructive: bool = False
    read_only: bool = False


class Persona(BaseModel):
    """A named set of what a caller may use. A new persona has no server enabled: no access."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)

    name: str
    description: str = ""
    created: datetime = Field(default_factory=utcnow)
    modified: datetime = Field(default_factory=utcnow)
    #: every enabled server is read-only for this persona
    read_only: bool = False
    #: on every enabled server, calls of tools that may be destructive must be approved
    confirm_destructive: bool = False
    #: the enabled servers (mount ids) and the rules for each
    servers: dict[str, ServerRules] = Field(default_factory=dict)
    #: what tools/list shows this persona (unset: ``[gateway] tool_exposure``)
    tool_exposure: Literal["all", "search", "auto"] | None = None

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not NAME_RE.fullmatch(value):
            raise ValueError("persona name must match ^[a-zA-Z0-9_-]{1,50}$")
        return value

    @field_validator("servers")
    @classmethod
    def _server_ids(cls, value: dict[str, ServerRules]) -> dict[str, ServerRules]:
        for server in value:
            if not MOUNT_ID_RE.fullmatch(server):
                raise ValueError(f"{server!r} is not a valid server id")
        return value

    def rules(self, server: str) -> ServerRules:
        """The rules of an enabled server; :class:`KeyError` when it is not enabled."""
        return self.servers[server]

    def enable(self, server: str) -> bool:
        """Enable a server with no finer rules; False when it already was."""
        if server in self.servers:
            return False
        self.servers = {**self.servers, server: ServerRules()}
        return True

    def disable(self, server: str) -> bool:
        """Disable a server and forget its rules; False when it was not enabled."""
        if server not in self.servers:
            return False
        self.servers = {k: v for k, v in self.servers.items() if k != server}
        return True

    def add_rule(self, server: str, kind: RuleKind, pattern: str) -> bool:
        """Add a pattern to one rule list of an enabled server; False when already there."""
        rules = self.rules(server)
        patterns = getattr(rules, kind)
        if pattern in patterns:
            return False
        setattr(rules, kind, [*patterns, pattern])
        return True

    def remove_rule(self, server: str, kind: RuleKind, pattern: str) -> bool:
        """Remove a pattern from one rule list of an enabled server; False when absent."""
        rules = self.rules(server)
        patterns = getattr(rules, kind)
        if pattern not in patterns:
            return False
        setattr(rules, kind, [p for p in patterns if p != pattern])
        return True
