"""Two callers on one backend: every backend-initiated message reaches only its own caller.

Two SDK client sessions (A and B) connect to one gateway over Streamable HTTP, each with its
own sampling, elicitation and roots callbacks and its own log level. Both call the fixture's
``ask`` tool at once; the backend waits until both calls are in flight and then, for each
call, logs, samples, elicits and lists roots. The three mounts show the three cases:

* a shared stdio backend: the wire says nothing of which call a message belongs to, so the
  gateway refuses every request and keeps the log lines to itself;
* the same backend with ``isolation = "session"``: each session has its own process, so
  everything is delivered, each to its own caller;
* a shared Streamable HTTP backend: each message comes on its own call's response stream,
  so everything is delivered, each to its own caller.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp.types as types
import pytest
from http_harness import EVENT_TIMEOUT, fixture_backend, run_gateway, stdio_fixture, write_config
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from pydantic import FileUrl

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]


class Caller:
    """One client's callbacks, each answering with the caller's own name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.logs: list[str] = []
        self.asked: list[str] = []

    async def sampling(self, context: Any, params: types.CreateMessageRequestParams) -> Any:
        content = params.messages[0].content
        self.asked.append(f"sampling:{content.text}")  # type: ignore[union-attr]
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=self.name), model="m")

    async def elicitation(self, context: Any, params: types.ElicitRequestParams) -> Any:
        self.asked.append(f"elicitation:{params.message}")
        return types.ElicitResult(action="accept", content={"name": self.name})

    async def roots(self, context: Any) -> types.ListRootsResult:
        self.asked.append("roots")
        return types.ListRootsResult(roots=[types.Root(uri=FileUrl(f"file:///{self.name}"))])

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(str(params.data))


@asynccontextmanager
async def session_for(url: str, caller: Caller) -> AsyncIterator[ClientSession]:
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx2.AsyncClient(timeout=httpx2.Timeout(30)))
        read, write = await stack.enter_async_context(streamable_http_client(url, http_client=http))
        session = await stack.enter_async_context(ClientSession(
            read, write, sampling_callback=caller.sampling,
            elicitation_callback=caller.elicitation, list_roots_callback=caller.roots,
            logging_callback=caller.logging))
        with anyio.fail_after(EVENT_TIMEOUT * 3):
            await session.initialize()
            await session.set_logging_level("debug")
        yield session


async def ask_both(
    mount: str, a: ClientSession, b: ClientSession, together: int = 2
) -> dict[str, Any]:
    """Both callers call ``ask`` at once; the backend asks once ``together`` calls are in
    (both of them, when the two callers share its process)."""
    answers: dict[str, Any] = {}

    async def one(name: str, session: ClientSession) -> None:
        result = await session.call_tool(f"{mount}__ask", {"who": name, "together": together})
        assert not result.is_error, result
        answers[name] = json.loads(result.content[0].text)  # type: ignore[union-attr]

    with anyio.fail_after(EVENT_TIMEOUT * 3):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, "A", a)
            tg.start_soon(one, "B", b)
    return answers


@pytest.fixture
async def remote_backend() -> AsyncIterator[str]:
    async with fixture_backend("http") as url:
        yield url


async def test_each_backend_message_reaches_only_its_own_caller(
    tmp_path: Path, remote_backend: str
) -> None:
    config = write_config(tmp_path / "vmcp.toml", {
        "transports.http": {"port": 0},
        "servers.shared": stdio_fixture(),
        "servers.isolated": stdio_fixture(isolation="session"),
        "servers.remote": {"transport": "http", "url": remote_backend},
    })
    async with run_gateway(config, "http") as gateway:
        callers = {"A": Caller("A"), "B": Caller("B")}
        async with session_for(gateway.url, callers["A"]) as a, session_for(
                gateway.url, callers["B"]) as b:
            # A shared stdio connection: the gateway cannot tell whose call asked.
            shared = await ask_both("shared", a, b)
            for name in "AB":
                for kind in ("sampling", "elicitation", "roots"):
                    assert shared[name][kind].startswith("refused:"), shared
                    assert "isolation" in shared[name][kind]
            assert callers["A"].asked == [] and callers["B"].asked == []
            assert not any(line.startswith("log for") for c in callers.values() for line in c.logs)
            await gateway.wait_for_line('isolation = "session"')

            # isolation = "session" (two processes) and a Streamable HTTP backend (one stream
            # per call): every question goes to the caller whose call asked it.
            for mount, together in (("isolated", 1), ("remote", 2)):
                for caller in callers.values():
                    caller.asked.clear()
                    caller.logs.clear()
                answers = await ask_both(mount, a, b, together)
                for name, caller in callers.items():
                    assert answers[name] == {
                        "sampling": name, "elicitation": name, "roots": [f"file:///{name}"]
                    }, (mount, answers)
                    assert caller.asked == [f"sampling:{name}", f"elicitation:who is {name}?",
                                            "roots"], (mount, caller.asked)
                    assert [line for line in caller.logs if line.startswith("log for")] == [
                        f"log for {name}"], (mount, caller.logs)


async def isolated_connections(home: Path, mount: str) -> int:
    result = await anyio.run_process(
        [sys.executable, "-m", "vmcp", "info", mount, "--json"],
        env={**os.environ, "VMCP_HOME": str(home)})
    return int(json.loads(result.stdout)["health"]["isolated_connections"])


async def test_an_isolated_connection_lives_as_long_as_its_session(tmp_path: Path) -> None:
    config = write_config(tmp_path / "vmcp.toml", {
        "transports.http": {"port": 0},
        "servers.isolated": stdio_fixture(isolation="session", pool={"max_connections": 1}),
    })
    home = tmp_path / "home"
    async with run_gateway(config, "http") as gateway, session_for(
            gateway.url, Caller("A")) as a:
        await a.call_tool("isolated__echo", {"text": "a"})
        assert await isolated_connections(home, "isolated") == 1
        async with session_for(gateway.url, Caller("B")) as b:
            # the cap is one connection: A's idle one is closed to make room for B's
            result = await b.call_tool("isolated__echo", {"text": "b"})
            assert result.content[0].text == "echo: b"  # type: ignore[union-attr]
            assert await isolated_connections(home, "isolated") == 1
        with anyio.fail_after(EVENT_TIMEOUT):
            while await isolated_connections(home, "isolated") != 0:
                await anyio.wait_all_tasks_blocked()
