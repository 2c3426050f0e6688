"""MCP over the control socket: what ``vmcp connect`` relays a stdio client to.

A control connection whose first request is ``{"op": "mcp", "args": {"persona": P}}`` is
answered once and then carries newline-delimited JSON-RPC both ways, as a stdio front would:
the connection is a session of the running gateway, as its owner (the socket is owner-only,
so the owner picks the persona, as ``vmcp start --persona`` does; without one, the gateway's
default). It needs no network front and no token.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from vmcp.auth.base import Principal
from vmcp.transports.base import JsonMessage
from vmcp.transports.lines import NOTIFICATION_BUDGET, LineSplitter, LineWriter

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway

_CHUNK = 64 * 1024


class _SocketPeer:
    """The front client at the other end of the control connection."""

    def __init__(self, out: LineWriter) -> None:
        self._out = out

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        self._out.write(message)


async def serve_mcp(gateway: Gateway, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, persona: str | None = None) -> None:
    """Serve one MCP session on an accepted control connection until the client ends it."""
    await gateway.started()  # as the stdio front: requests are served once mounts are up
    out = LineWriter(writer.transport, NOTIFICATION_BUDGET)  # type: ignore[arg-type]
    principal = None
    if persona:
        gateway.require_personas()
        principal = Principal("connect", persona)
    session = gateway.open_session(_SocketPeer(out), principal)
    splitter = LineSplitter(gateway.config.gateway.max_message_bytes, session.handle_bytes,
                            lambda: session.handle_bytes(b""))  # an over-long line: -32700
    try:
        while data := await reader.read(_CHUNK):
            splitter.feed(data)
            await writer.drain()  # a client that does not read its answers is not read
    finally:
        await session.aclose()
        out.close()
