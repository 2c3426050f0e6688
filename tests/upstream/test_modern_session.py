"""``ModernUpstreamSession`` against real fixture processes over stdio: the era probe, the
``_meta`` envelope, the mapped handshake-era requests and the listen it holds open."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from vmcp.config import MountConfig
from vmcp.protocol.errors import RpcError
from vmcp.transports.stdio import StdioTransport
from vmcp.upstream.modern import ModernUpstreamSession
from vmcp.upstream.session import NO_RELATION, UpstreamSession

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

SERVERS = Path(__file__).resolve().parents[1] / "fixtures" / "servers"
TIMEOUT = 10.0
START_TIMEOUT = 30.0


class Recorder:
    """What the session hands the gateway."""

    def __init__(self) -> None:
        self.notifications: list[tuple[dict[str, Any], Any]] = []
        self._arrived = anyio.Event()

    def upstream_notification(self, upstream: UpstreamSession, message: Any, origin: Any) -> None:
        self.notifications.append((message, origin))
        self._arrived.set()

    def upstream_request(self, upstream: UpstreamSession, message: Any, origin: Any) -> None:
        raise AssertionError(f"unexpected backend request {message}")

    def upstream_closed(self, upstream: UpstreamSession, reason: str) -> None:
        """Nothing to do."""

    async def wait_for(self, method: str, count: int = 1) -> list[dict[str, Any]]:
        """The first ``count`` notifications of ``method``, once they arrived."""
        with anyio.fail_after(TIMEOUT):
            while len(found := [m for m, _ in self.notifications if m["method"] == method]
                      ) < count:
                self._arrived = anyio.Event()
                await self._arrived.wait()
        return found


@asynccontextmanager
async def session_to(server: str, probe: bool,
                     events: Recorder | None = None) -> AsyncIterator[ModernUpstreamSession]:
    """A started session to ``tests/fixtures/servers/<server>.py``; closed (and the process
    ended) on the way out."""
    config = MountConfig(id="m", command=sys.executable, args=[str(SERVERS / f"{server}.py")])
    connection = await StdioTransport().connect(config, dict(os.environ), {})
    session = ModernUpstreamSession("m", "m-0", connection, events or Recorder(), probe=probe)
    try:
        with anyio.fail_after(START_TIMEOUT):
            await session.start(START_TIMEOUT)
        yield session
    finally:
        await session.aclose()


async def call(session: UpstreamSession, tool: str, **params: Any) -> dict[str, Any]:
    """One tool call's result."""
    arguments = params.pop("arguments", {})
    return await session.request("tools/call", {"name": tool, "arguments": arguments, **params},
                                 TIMEOUT)


@pytest.mark.parametrize(("server", "modern"), [("modern", True), ("tasker", False),
                                                ("hostile", False), ("alpha", True)])
async def test_the_probe_finds_the_era(server: str, modern: bool) -> None:
    """Modern-only and dual-era (the SDK's ``Server.run``) backends answer ``server/discover``;
    hand-written handshake-only ones answer -32601, and the session falls back to
    ``initialize`` on the same connection."""
    async with session_to(server, probe=True) as session:
        assert session.modern is modern
        assert session.server_info["name"] == server
        assert (session.protocol_version == "2026-07-28") is modern
        listed = await session.request("tools/list", None, TIMEOUT)
        assert listed["tools"]


async def test_a_modern_only_backend_refuses_the_handshake() -> None:
    """Without the probe (``era = "legacy"``) the modern-only fixture cannot be used: it is
    what the gateway's back side was limited to before."""
    config = MountConfig(id="m", command=sys.executable, args=[str(SERVERS / "modern.py")])
    connection = await StdioTransport().connect(config, dict(os.environ), {})
    session = UpstreamSession("m", "m-0", connection, Recorder())
    try:
        with pytest.raises(RpcError) as refused, anyio.fail_after(START_TIMEOUT):
            await session.start(START_TIMEOUT)
        assert refused.value.code == -32022
    finally:
        await session.aclose()


async def test_the_envelope_keeps_the_requests_own_meta() -> None:
    async with session_to("modern", probe=False) as session:
        assert session.instructions == "A modern-only fixture."
        plain = (await call(session, "envelope"))["structuredContent"]
        assert plain["protocolVersion"] == "2026-07-28"
        assert plain["clientInfo"] == session.client_info
        assert "logLevel" not in plain
        own = (await call(session, "envelope", _meta={
            "io.modelcontextprotocol/logLevel": "debug",
            "io.modelcontextprotocol/protocolVersion": "1999-01-01",
            "io.modelcontextprotocol/clientCapabilities": {}}))["structuredContent"]
        assert own["logLevel"] == "debug"
        assert own["protocolVersion"] == "2026-07-28"  # the gateway's, not a front client's
        assert own["clientCapabilities"] == session.client_capabilities
        # logging/setLevel has no modern form: it becomes the level of requests naming none
        assert await session.request("logging/setLevel", {"level": "warning"}, TIMEOUT) == {}
        assert (await call(session, "envelope"))["structuredContent"]["logLevel"] == "warning"
        assert await session.request("ping", None, TIMEOUT) == {}  # a server/discover round trip


async def test_the_listen_is_reopened_when_the_backend_ends_it() -> None:
    events = Recorder()
    async with session_to("modern", probe=False, events=events) as session:
        opened = int((await call(session, "listens", arguments={"after": 0}))
                     ["content"][0]["text"])
        assert opened == 1
        first = session.listen_id
        await call(session, "end_listens")
        reopened = await call(session, "listens", arguments={"after": 1, "timeout": TIMEOUT})
        assert reopened["content"][0]["text"] == "2"
        assert session.listen_id not in (None, first)
        await call(session, "add_tool", arguments={"name": "after"})
        await events.wait_for("notifications/tools/list_changed")
        assert [origin for _, origin in events.notifications] == [NO_RELATION]
        assert not session.pending  # the listen is no call in flight


async def test_the_backends_server_info_stays_out_of_results() -> None:
    async with session_to("modern", probe=False) as session:
        assert session.server_info == {"name": "modern", "version": "3.0.0"}
        result = await call(session, "echo", arguments={"text": "x"})
    assert "_meta" not in result
    assert result["resultType"] == "complete"
