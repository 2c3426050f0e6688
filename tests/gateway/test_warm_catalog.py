"""The warm catalog: lists kept on disk answer at once while backends start, calls wait for
their backend, and a backend that flaps keeps its tools.

``alpha`` runs behind a gate (``fixtures/servers/gated.py``, a named pipe): it starts only
when the test opens the gate, so "still starting" is a state the test holds, not a race.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from gateway_harness import (
    ALPHA,
    BETA,
    EVENT_TIMEOUT,
    FIXTURE_SERVERS,
    Gateway,
    Notifications,
    all_tools,
    backend,
    texts,
    write_config,
)
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from test_personas import PersonaGateway, make_personas

pytestmark = pytest.mark.anyio


def gated(gate: Path, script: Path, **settings: Any) -> dict[str, Any]:
    """A stdio mount running ``script`` behind ``gate``."""
    return {"command": sys.executable,
            "args": [str(FIXTURE_SERVERS / "gated.py"), str(gate), str(script)], **settings}


def make_gate(tmp_path: Path) -> Path:
    """A named pipe for :func:`gated` mounts."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    return gate


async def release(gate: Path) -> None:
    """Let one waiting (or the next) start of a gated backend through."""
    def open_and_close() -> None:
        with gate.open("wb"):
            pass

    with anyio.fail_after(EVENT_TIMEOUT):
        await anyio.to_thread.run_sync(open_and_close)


def gateway_on(home: Path, tmp_path: Path, run: str, servers: dict[str, Any],
               settings: dict[str, Any] | None = None) -> Gateway:
    """A gateway configuration of its own, on the shared ``home``."""
    config = write_config(tmp_path / run / "vmcp.toml", servers, settings)
    return Gateway(home=home, config=config, log=tmp_path / f"{run}.log")


async def names(session: ClientSession) -> list[str]:
    """The tool names listed."""
    return [tool.name for tool in await all_tools(session)]


async def call_while_releasing(
    session: ClientSession, gate: Path, tool: str = "alpha__echo",
    arguments: dict[str, Any] | None = None,
) -> types.CallToolResult:
    """Call ``tool`` (``alpha__echo("hi")``), and open the gate while the call waits for its
    backend."""
    result: list[types.CallToolResult] = []

    async def call() -> None:
        result.append(await session.call_tool(tool, arguments or {"text": "hi"}))

    async with anyio.create_task_group() as group:
        group.start_soon(call)
        await release(gate)
    return result[0]


async def test_a_restarted_gateway_answers_from_the_warm_catalog_while_backends_start(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    gate = make_gate(tmp_path)
    servers = {"alpha": gated(gate, ALPHA), "beta": backend(BETA)}
    first = gateway_on(home, tmp_path, "first", servers)
    async with anyio.create_task_group() as group:
        group.start_soon(release, gate)
        async with first.connect() as session:
            listed = await names(session)
    assert "alpha__echo" in listed and "beta__echo" in listed
    assert {p.name for p in (home / "catalog").iterdir()} == {"alpha.json", "beta.json"}

    # alpha waits at the gate: initialize and the lists are answered from the warm catalog,
    # and a call of alpha's waits for it instead of failing
    notes = Notifications()
    async with gateway_on(home, tmp_path, "second", servers).connect(
            message_handler=notes) as session:
        assert await names(session) == listed
        assert texts(await call_while_releasing(session, gate)) == ["alpha: hi"]
        assert texts(await session.call_tool("beta__echo", {"text": "hi"})) == ["beta: hi"]
        assert await names(session) == listed
    # the live lists were the remembered ones: nothing to announce
    assert not notes.matching(lambda n: isinstance(n, types.ToolListChangedNotification))

    # alpha never passes the gate: its call fails saying so (not "unknown tool"), and once
    # it has failed to start its tools leave the list
    notes = Notifications()
    slow = gateway_on(home, tmp_path, "third", {
        "alpha": gated(gate, ALPHA, startup_timeout=3), "beta": backend(BETA)})
    async with slow.connect(message_handler=notes) as session:
        assert await names(session) == listed
        with pytest.raises(MCPError, match=r"Backend 'alpha' (is still starting|failed to start)"):
            await session.call_tool("alpha__echo", {"text": "hi"})
        await notes.wait_for_type(types.ToolListChangedNotification)
        assert [name for name in await names(session) if name.startswith("alpha")] == []


async def test_a_mount_whose_backend_flaps_keeps_its_tools(tmp_path: Path) -> None:
    """alpha crashes; its restart waits at the gate, and its tools stay listed meanwhile."""
    home = tmp_path / "home"
    home.mkdir()
    gate = make_gate(tmp_path)
    gateway = gateway_on(home, tmp_path, "run", {"alpha": gated(gate, ALPHA),
                                                 "beta": backend(BETA)})
    notes = Notifications()
    async with anyio.create_task_group() as group:
        group.start_soon(release, gate)
        async with gateway.connect(message_handler=notes) as session:
            listed = await names(session)
            with pytest.raises(MCPError, match="Backend 'alpha' is unavailable"):
                await session.call_tool("alpha__crash", {})
            assert await names(session) == listed
            assert texts(await call_while_releasing(session, gate)) == ["alpha: hi"]
    assert "alpha__echo" in listed
    assert "replica alpha-0 restarted" in gateway.log_text()


async def test_without_a_grace_period_a_lost_backend_leaves_the_lists(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    gate = make_gate(tmp_path)
    gateway = gateway_on(home, tmp_path, "run", {"alpha": gated(gate, ALPHA),
                                                 "beta": backend(BETA)}, {"flap_grace": 0})
    notes = Notifications()
    async with anyio.create_task_group() as group:
        group.start_soon(release, gate)
        async with gateway.connect(message_handler=notes) as session:
            with pytest.raises(MCPError, match="Backend 'alpha' is unavailable"):
                await session.call_tool("alpha__crash", {})
            assert [name for name in await names(session) if name.startswith("alpha")] == []
            with pytest.raises(MCPError, match="Unknown tool: alpha__echo"):
                await session.call_tool("alpha__echo", {"text": "hi"})
            await release(gate)  # back: the tools return, announced again
            await notes.wait_for_type(types.ToolListChangedNotification, 2)
            assert "alpha__echo" in await names(session)


async def test_the_warm_catalog_keeps_to_each_personas_view(tmp_path: Path) -> None:
    """coder sees alpha's echo, add and t* only, from the warm catalog too; a hidden tool of
    a starting mount is unknown at once (it does not wait)."""
    home = tmp_path / "home"
    make_personas(home)
    gate = make_gate(tmp_path)
    config = write_config(tmp_path / "config" / "vmcp.toml",
                          {"alpha": gated(gate, ALPHA), "beta": backend(BETA)})
    first = Gateway(home=home, config=config, log=tmp_path / "first.log")
    async with anyio.create_task_group() as group:
        group.start_soon(release, gate)
        async with first.connect() as session:
            assert "alpha__crash" in await names(session)
    coder = PersonaGateway(home=home, config=config, log=tmp_path / "coder.log",
                           persona="coder")
    async with coder.connect() as session:
        assert await names(session) == ["alpha__echo", "alpha__add", "alpha__touch"]
        with pytest.raises(MCPError, match="Unknown tool: alpha__crash"):
            await session.call_tool("alpha__crash", {})
        assert texts(await call_while_releasing(session, gate)) == ["alpha: hi"]
