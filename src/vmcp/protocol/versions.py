"""MCP protocol revisions vmcp speaks."""

from __future__ import annotations

#: handshake-era revisions, oldest first; vmcp speaks all of them on both sides
HANDSHAKE_VERSIONS: tuple[str, ...] = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
LATEST_HANDSHAKE_VERSION = HANDSHAKE_VERSIONS[-1]
#: what an HTTP request without ``MCP-Protocol-Version`` is assumed to speak
DEFAULT_HTTP_VERSION = "2025-03-26"


def negotiate(requested: object) -> str:
    """The version to answer ``initialize`` with: the client's if supported, else our newest."""
    if isinstance(requested, str) and requested in HANDSHAKE_VERSIONS:
        return requested
    return LATEST_HANDSHAKE_VERSION
