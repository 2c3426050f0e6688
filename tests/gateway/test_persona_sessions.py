"""Two personas on one gateway at the same time: what each session hears, live changes, and
read-only mode.

The gateway runs in the test's event loop with real backends (the fixture servers, started
as processes) and front sessions that are official SDK ``ClientSession`` objects connected
through memory streams in place of a wire. Each session authenticates with a bearer token of
the built-in ``token`` driver, through ``Gateway.authenticate``, as an HTTP front does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from gateway_harness import (
    BETA,
    CONNECT_TIMEOUT,
    EVENT_TIMEOUT,
    FIXTURE_SERVERS,
    Notifications,
    all_tools,
    backend,
    texts,
    write_config,
)
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from vmcp.auth.base import Principal
from vmcp.auth.tokens import TokenStore
from vmcp.config import load_config
from vmcp.gateway.gateway import Gateway
from vmcp.persona import Persona, PersonaStore

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

GAMMA = FIXTURE_SERVERS / "gamma.py"
GAMMA_TOOLS = ["gamma__lookup", "gamma__store", "gamma__listed", "gamma__purge"]
BETA_TOOLS = ["beta__echo", "beta__whoami", "beta__links", "beta__touch"]


class MemoryPeer:
    """The gateway's side of an in-memory connection: messages go to the client's stream."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def send(self, message: dict[str, Any], related_to: Any = None) -> None:
        """Queue one message for the client (as the stdio client would parse it)."""
        parsed = types.jsonrpc_message_adapter.validate_json(json.dumps(message), by_name=False)
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.stream.send_nowait(SessionMessage(parsed))


@asynccontextmanager
async def connect(
    gateway: Gateway, principal: Principal, **session_args: Any
) -> AsyncIterator[ClientSession]:
    """An initialized SDK client session on ``gateway`` acting as ``principal``."""
    to_client, client_reads = anyio.create_memory_object_stream[SessionMessage | Exception](
        math.inf)
    client_writes, from_client = anyio.create_memory_object_stream[SessionMessage](math.inf)
    handle = gateway.open_session(MemoryPeer(to_client), principal)

    async def pump() -> None:
        async for item in from_client:
            handle.handle_bytes(
                item.message.model_dump_json(by_alias=True, exclude_unset=True).encode())

    pumping = asyncio.get_running_loop().create_task(pump())
    try:
        async with ClientSession(client_reads, client_writes, **session_args) as session:
            with anyio.fail_after(CONNECT_TIMEOUT):
                await session.initialize()
            yield session
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
        await handle.aclose()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``VMCP_HOME`` with the personas ``watcher`` (gamma), ``blind`` (beta) and
    ``auditor`` (read-only, gamma and plain)."""
    home = tmp_path / "home"
    monkeypatch.setenv("VMCP_HOME", str(home))
    store = PersonaStore.default()
    for name, servers in (("watcher", ["gamma"]), ("blind", ["beta"]),
                          ("auditor", ["gamma", "plain"])):
        persona = store.create(name)
        for server in servers:
            persona.enable(server)
        persona.read_only = name == "auditor"
        store.save(persona)
    return home


@asynccontextmanager
async def running_gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """beta, gamma (trusted) and plain (gamma again, untrusted), with ``[auth] driver =
    "token"``; both gamma mounts list ``listed`` as read-only."""
    gamma = backend(GAMMA, read_only_tools=["listed"])
    path = write_config(tmp_path / "config" / "vmcp.toml", {
        "beta": backend(BETA), "gamma": {**gamma, "trusted": True}, "plain": gamma})
    with path.open("a", encoding="utf-8") as fh:
        fh.write('\n[auth]\ndriver = "token"\n')
    config, _ = load_config(path)
    gateway = Gateway(config)
    try:
        with anyio.fail_after(CONNECT_TIMEOUT):
            await gateway.start()
        yield gateway
    finally:
        await gateway.stop()


async def login(gateway: Gateway, persona: str) -> Principal:
    """Mint a token for ``persona`` and authenticate with it as a front would."""
    _, token = TokenStore.default().create(persona, None)
    return await gateway.authenticate({"Authorization": f"Bearer {token}"})


def of_type(kind: type) -> Callable[[Any], bool]:
    """Predicate: a notification of ``kind``."""
    return lambda item: isinstance(item, kind)


def gamma_log(item: Any) -> bool:
    """Predicate: gamma's own log message."""
    return isinstance(item, types.LoggingMessageNotification) and (
        item.params.data == "gamma heard roots change")


def state_updated(item: Any) -> bool:
    """Predicate: ``resources/updated`` for ``gamma://state``."""
    return isinstance(item, types.ResourceUpdatedNotification) and (
        str(item.params.uri) == "gamma://state")


HEARD = (gamma_log, state_updated, of_type(types.ToolListChangedNotification))


def counts(notes: Notifications) -> list[int]:
    """How many of gamma's log, updates and tool list changes a client has received."""
    return [len(notes.matching(predicate)) for predicate in HEARD]


async def test_each_session_hears_only_what_its_persona_sees(
    tmp_path: Path, home: Path
) -> None:
    notes_a, notes_b = Notifications(), Notifications()
    async with running_gateway(tmp_path) as gateway:
        watcher = await login(gateway, "watcher")
        blind = await login(gateway, "blind")
        assert (watcher.persona, blind.persona) == ("watcher", "blind")
        async with (
            connect(gateway, watcher, message_handler=notes_a) as a,
            connect(gateway, blind, message_handler=notes_b) as b,
        ):
            assert [t.name for t in await all_tools(a)] == GAMMA_TOOLS
            assert [t.name for t in await all_tools(b)] == BETA_TOOLS
            await a.subscribe_resource("gamma://state")

            # B's roots change reaches every backend; gamma answers with a log line, a tool
            # list change and an update of the subscribed URI, unrelated to any request.
            await b.send_roots_list_changed()
            for predicate in HEARD:
                await notes_a.wait_for(predicate)
            await b.send_ping()  # B's stream is ordered: anything sent to it is in by now
            assert counts(notes_b) == [0, 0, 0]

            # Live change: gamma moves from watcher to blind.
            store = PersonaStore.default()
            store.update("watcher", lambda p: p.disable("gamma"))
            store.update("blind", lambda p: p.enable("gamma"))
            await notes_a.wait_for_type(types.ToolListChangedNotification, count=2)
            await notes_b.wait_for_type(types.ToolListChangedNotification, count=1)
            assert await all_tools(a) == []
            assert [t.name for t in await all_tools(b)] == BETA_TOOLS + GAMMA_TOOLS
            with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as hidden:
                await a.read_resource("gamma://state")
            assert hidden.value.error.code == -32002
            await b.subscribe_resource("gamma://state")

            await a.send_roots_list_changed()
            for predicate in HEARD:
                await notes_b.wait_for(predicate, count=2 if predicate is HEARD[2] else 1)
            await a.send_ping()
            assert counts(notes_a) == [1, 1, 2]


async def test_read_only_persona_gets_only_read_only_tools(
    tmp_path: Path, home: Path
) -> None:
    notes = Notifications()
    async with running_gateway(tmp_path) as gateway:
        auditor = await login(gateway, "auditor")
        async with connect(gateway, auditor, message_handler=notes) as session:
            # trusted gamma: its readOnlyHint tool and the configured one; plain (untrusted):
            # only the configured one.
            tools = [t.name for t in await all_tools(session)]
            assert tools == ["gamma__lookup", "gamma__listed", "plain__listed"]
            assert texts(await session.call_tool("gamma__lookup", {})) == ["gamma lookup"]
            assert texts(await session.call_tool("plain__listed", {})) == ["gamma listed"]
            for name in ("gamma__store", "gamma__purge", "plain__lookup"):
                with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as refused:
                    await session.call_tool(name, {})
                assert refused.value.error.message == f"Unknown tool: {name}"

            # Turning read-only off shows the rest at once.
            PersonaStore.default().update("auditor", _writable)
            await notes.wait_for_type(types.ToolListChangedNotification)
            tools = [t.name for t in await all_tools(session)]
            assert tools == GAMMA_TOOLS + [name.replace("gamma", "plain") for name in GAMMA_TOOLS]


def _writable(persona: Persona) -> None:
    persona.read_only = False
