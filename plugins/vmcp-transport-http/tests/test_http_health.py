"""``/livez`` and ``/readyz`` on the HTTP and WebSocket fronts of a real ``vmcp start``, and
the same verdict in ``vmcp status --json``: ready, not ready while a (slow) mount is still
starting, ready again once it is up, and not ready while the gateway drains before stopping.

The slow backend is the fixture server behind a gate: a FIFO it reads one line from before
it starts, so the test decides when its start-up ends. The call kept in flight during the
drain is a tool that answers once a line arrives on another FIFO (no sleeps).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp.types as types
import pytest
from http_harness import EVENT_TIMEOUT, RunningGateway, run_gateway, stdio_fixture, write_config
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

GATE = """
import os, sys
with open(sys.argv[1]) as gate:
    gate.readline()
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""

WAITER = """
import sys
from mcp.server.mcpserver import MCPServer

server = MCPServer("waiter")


@server.tool()
def wait() -> str:
    with open(sys.argv[1]) as gate:
        return gate.readline().strip()


server.run("stdio")
"""


def _vmcp(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VMCP_HOME": str(config.parent / "home")}
    return subprocess.run([sys.executable, "-m", "vmcp", "--config", str(config), *args],
                          env=env, capture_output=True, text=True, timeout=60, check=False)


async def _probes(gateway: RunningGateway) -> dict[str, tuple[int, str]]:
    """Each front's answer to each probe: ``{"http /readyz": (status, body), ...}``."""
    bases = {"http": gateway.urls["http"].rsplit("/", 1)[0],
             "ws": gateway.urls["ws"].replace("ws://", "http://", 1).rsplit("/", 1)[0]}
    answers = {}
    async with httpx2.AsyncClient(timeout=EVENT_TIMEOUT) as client:
        for front, base in bases.items():
            for path in ("/livez", "/readyz"):
                response = await client.get(base + path)
                assert response.headers["cache-control"] == "no-store"
                answers[f"{front} {path}"] = (response.status_code, response.text)
    return answers


async def _status(config: Path) -> dict[str, Any]:
    result = await anyio.to_thread.run_sync(_vmcp, config, "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["health"]


def _all(status: int, body: str) -> dict[str, tuple[int, str]]:
    return {f"{front} {path}": (200, "ok\n") if path == "/livez" else (status, body)
            for front in ("http", "ws") for path in ("/livez", "/readyz")}


async def test_readyz_follows_mounts_starting_and_the_drain(tmp_path: Path) -> None:
    gate, release = tmp_path / "gate.fifo", tmp_path / "release.fifo"
    os.mkfifo(gate)
    os.mkfifo(release)
    (tmp_path / "gate.py").write_text(GATE, encoding="utf-8")
    (tmp_path / "waiter.py").write_text(WAITER, encoding="utf-8")
    fixture = stdio_fixture()
    config = write_config(tmp_path / "vmcp.toml", {
        "gateway": {"shutdown_grace": 30.0},
        "transports.http": {"port": 0},
        "transports.ws": {"port": 0},
        "servers.quick": fixture,
        "servers.waiter": {"command": sys.executable,
                           "args": [str(tmp_path / "waiter.py"), str(release)]},
        "servers.sluggish": {"command": sys.executable, "enabled": False,
                             "args": [str(tmp_path / "gate.py"), str(gate), *fixture["args"]]},
    })
    async with run_gateway(config, "http", "ws") as gateway:
        assert await _probes(gateway) == _all(200, "ok\n")
        assert await _status(config) == {"live": True, "ready": True, "problems": [],
                                         "pending_mounts": []}

        async with anyio.create_task_group() as group:
            mounted: list[subprocess.CompletedProcess[str]] = []

            async def mount() -> None:
                mounted.append(await anyio.to_thread.run_sync(_vmcp, config, "mount",
                                                              "sluggish"))

            group.start_soon(mount)
            with anyio.fail_after(EVENT_TIMEOUT * 3):
                # Opening the FIFO returns once the gated backend has opened it: spawned,
                # not started.
                writer = await anyio.to_thread.run_sync(gate.open, "w")
            try:
                assert await _probes(gateway) == _all(503, "not ready: 1 mount(s) starting\n")
                assert await _status(config) == {
                    "live": True, "ready": False, "problems": ["1 mount(s) starting"],
                    "pending_mounts": ["sluggish"]}
            finally:
                writer.write("go\n")
                writer.close()
        assert mounted[0].returncode == 0, mounted[0].stderr
        assert await _probes(gateway) == _all(200, "ok\n")

        await _drain(gateway, config, release)


async def _drain(gateway: RunningGateway, config: Path, release: Path) -> None:
    """A call stays in flight (the backend waits on a FIFO) while ``vmcp stop`` drains: both
    fronts say ``stopping`` until it ends, and a new request gets 503 with ``Retry-After``."""
    async with (
        streamable_http_client(gateway.urls["http"]) as (read, write),
        ClientSession(read, write) as session,
        anyio.create_task_group() as group,
    ):
        with anyio.fail_after(EVENT_TIMEOUT):
            await session.initialize()
            # Listed first: the SDK checks a result against the listed output schema and
            # would list the tools after the call otherwise, a new request that a draining
            # gateway refuses (503).
            await session.list_tools()
        results: list[types.CallToolResult] = []

        async def call() -> None:
            results.append(await session.call_tool("waiter__wait", {}))

        group.start_soon(call)
        with anyio.fail_after(EVENT_TIMEOUT):
            writer = await anyio.to_thread.run_sync(release.open, "w")  # the call arrived
        stopped: list[subprocess.CompletedProcess[str]] = []

        async def stop() -> None:  # returns once the gateway is gone
            stopped.append(await anyio.to_thread.run_sync(_vmcp, config, "stop"))

        try:
            group.start_soon(stop)
            await gateway.wait_for_line("calls in flight get")
            assert await _probes(gateway) == _all(503, "not ready: stopping\n")
            async with httpx2.AsyncClient(timeout=EVENT_TIMEOUT) as client:
                refused = await client.post(gateway.urls["http"], json={
                    "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                        "protocolVersion": "2025-11-25", "capabilities": {},
                        "clientInfo": {"name": "late"}}},
                    headers={"Accept": "application/json, text/event-stream"})
            assert (refused.status_code, refused.headers["Retry-After"]) == (503, "1")
        finally:
            writer.write("released\n")
            writer.close()
    assert results[0].content[0].text == "released"  # type: ignore[union-attr]
    assert stopped[0].returncode == 0, stopped[0].stderr


async def test_probes_answer_while_the_mounts_start(tmp_path: Path) -> None:
    """The fronts listen while the gateway starts: the probes and ``vmcp status`` say it is
    starting, and a client that connects meanwhile is served once the mounts are up."""
    gate = tmp_path / "gate.fifo"
    os.mkfifo(gate)
    (tmp_path / "gate.py").write_text(GATE, encoding="utf-8")
    fixture = stdio_fixture()
    config = write_config(tmp_path / "vmcp.toml", {
        "transports.http": {"port": 0},
        "transports.ws": {"port": 0},
        "servers.sluggish": {"command": sys.executable,
                             "args": [str(tmp_path / "gate.py"), str(gate), *fixture["args"]]},
    })
    async with run_gateway(config, "http", "ws", starting=True,
                           options=("--log-level", "debug")) as gateway:
        with anyio.fail_after(EVENT_TIMEOUT):
            writer = await anyio.to_thread.run_sync(gate.open, "w")  # spawned, not started
        try:
            assert await _probes(gateway) == _all(
                503, "not ready: starting; 1 mount(s) starting\n")
            assert await _status(config) == {
                "live": True, "ready": False, "problems": ["starting", "1 mount(s) starting"],
                "pending_mounts": ["sluggish"]}
            async with (
                streamable_http_client(gateway.urls["http"]) as (read, write),
                ClientSession(read, write) as session,
                anyio.create_task_group() as group,
            ):
                tools: list[str] = []

                async def early_client() -> None:
                    with anyio.fail_after(EVENT_TIMEOUT):
                        await session.initialize()  # held until the gateway has started
                        tools.extend(t.name for t in (await session.list_tools()).tools)

                group.start_soon(early_client)
                await gateway.wait_for_line("POST /mcp waits until the gateway has started")
                writer.write("go\n")
                writer.close()
        finally:
            if not writer.closed:
                writer.close()
        # Served only once the mount was up: its tools were there from the first list.
        assert tools and all(name.startswith("sluggish__") for name in tools)
        await gateway.wait_for_line("vmcp: serving http on")
        assert await _probes(gateway) == _all(200, "ok\n")
