"""What a handshake-era session is, written down so that another instance can rebuild it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

#: separates the instance from the random part of a shared session's id
ID_SEPARATOR = "."


def instance_of(identifier: str) -> str | None:
    """The instance named by a session id or a server->client request id
    (``<instance>.<rest>``), or None when it names none."""
    instance, sep, rest = identifier.partition(ID_SEPARATOR)
    return instance if sep and instance and rest else None


@dataclass(slots=True)
class SessionRecord:
    """One initialized handshake-era session, as the instance that serves it next needs it."""

    #: the session id the client sends (``Mcp-Session-Id``)
    session_id: str
    #: the instance that opened it
    instance: str
    #: the authenticated principal's name and persona (a rebuild requires the same one)
    principal: str | None
    persona: str | None
    #: what ``initialize`` negotiated
    protocol_version: str | None
    client_capabilities: dict[str, Any] = field(default_factory=dict)
    client_info: dict[str, Any] = field(default_factory=dict)
    #: the ``logging/setLevel`` level, or None for all
    log_level: str | None = None
    #: resource subscriptions as (mount id, backend URI)
    subscriptions: list[tuple[str, str]] = field(default_factory=list)
    #: when a request of the session was last seen (epoch seconds)
    last_seen: float = 0.0

    def encode(self) -> str:
        """The record as JSON."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | bytes) -> SessionRecord:
        """A record from :meth:`encode`'s JSON.

        :raises ValueError: not a record.
        """
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a session record is a JSON object")
        try:
            record = cls(**data)
        except TypeError as exc:
            raise ValueError(f"not a session record: {exc}") from exc
        record.subscriptions = [(str(m), str(u)) for m, u in record.subscriptions]
        return record
