"""``vmcp start --workers 2`` as real processes, driven by the SDK's 2026-07-28 client.

Both workers serve (each call answers with the pid of the worker whose backend ran it: a
worker spawns its own stdio backends, so the backend's parent is the worker); a worker
killed with SIGKILL is restarted while the other keeps serving, and only clients whose
connection was on the killed worker see a failure; SIGTERM drains: a call in flight
finishes, a new request gets 503 with ``Retry-After``, the supervisor exits with 0.

The supervisor runs in its own process group, ended by the test whatever happens. The
call kept in flight is a tool that answers once a line arrives on a FIFO (no sleeps).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.client import Client

from vmcp.tomlwrite import dumps

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
START_TIMEOUT = 60.0
EVENT_TIMEOUT = 20.0

BACKEND = """
import os, sys
from mcp.server.mcpserver import MCPServer

server = MCPServer("who")


@server.tool()
def parent() -> str:
    return str(os.getppid())


@server.tool()
def wait() -> str:
    with open(sys.argv[1]) as gate:
        return gate.readline().strip()


server.run("stdio")
"""


@dataclass
class Supervisor:
    """A running ``vmcp start --workers N`` and what it printed."""

    process: Process
    home: Path
    config: Path
    lines: list[str] = field(default_factory=list)
    url: str = ""
    _new_line: anyio.Event = field(default_factory=anyio.Event)

    def add_line(self, line: str) -> None:
        """Record one line of stderr and wake whoever waits for one."""
        self.lines.append(line)
        self._new_line.set()
        self._new_line = anyio.Event()

    async def wait_for_lines(self, text: str, count: int = 1) -> list[str]:
        """Wait until ``count`` lines of stderr contain ``text``; return them."""
        with anyio.fail_after(START_TIMEOUT):
            while True:
                found = [line for line in self.lines if text in line]
                if len(found) >= count:
                    return found
                await self._new_line.wait()

    def vmcp(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another ``vmcp`` command against this home."""
        return subprocess.run(
            [sys.executable, "-m", "vmcp", "--config", str(self.config), *args],
            env={**os.environ, "VMCP_HOME": str(self.home)}, capture_output=True, text=True,
            timeout=60, check=False)

    async def status(self) -> dict[str, Any]:
        """``vmcp status --json``."""
        result = await anyio.to_thread.run_sync(self.vmcp, "status", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]


def _config(tmp_path: Path, gate: Path) -> Path:
    (tmp_path / "who.py").write_text(BACKEND, encoding="utf-8")
    config = tmp_path / "vmcp.toml"
    config.write_text(dumps({
        "gateway": {"shutdown_grace": 30.0},
        "transports": {"http": {"port": 0}},
        "servers": {"who": {"command": sys.executable,
                            "args": [str(tmp_path / "who.py"), str(gate)]}},
    }), encoding="utf-8")
    return config


@asynccontextmanager
async def supervisor(tmp_path: Path, workers: int = 2) -> AsyncIterator[Supervisor]:
    """Start ``vmcp start -t http --workers N``; yield once every worker serves."""
    gate = tmp_path / "gate.fifo"
    os.mkfifo(gate)
    config = _config(tmp_path, gate)
    home = tmp_path / "home"
    process = await anyio.open_process(
        [sys.executable, "-m", "vmcp", "--config", str(config), "start", "-t", "http",
         "--workers", str(workers)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "VMCP_HOME": str(home)}, start_new_session=True)
    running = Supervisor(process, home, config)

    async def read() -> None:
        assert process.stderr is not None
        buffer = ""
        async for chunk in TextReceiveStream(process.stderr):
            buffer += chunk
            *lines, buffer = buffer.split("\n")
            for line in lines:
                running.add_line(line)
        running.add_line("(stderr closed)")

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(read)
            try:
                line = (await running.wait_for_lines(f"vmcp: {workers} workers serving http"))[0]
                running.url = line.rsplit(" on ", 1)[1]
                yield running
            finally:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                with anyio.CancelScope(shield=True):
                    await process.wait()
                group.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await process.aclose()
    finally:
        print("--- supervisor stderr ---\n" + "\n".join(running.lines))


async def _served_by(url: str) -> int:
    """Make one modern-era call over a new connection; the pid of the worker that served it."""
    async with Client(url, mode=MODERN) as client:
        result = await client.call_tool("who__parent", {})
    return int(result.content[0].text)  # type: ignore[union-attr]


async def test_both_workers_serve_modern_clients(tmp_path: Path) -> None:
    async with supervisor(tmp_path) as running:
        status = await running.status()
        pids = {worker["pid"] for worker in status["workers"]}
        assert [w["state"] for w in status["workers"]] == ["up", "up"]
        assert len(pids) == 2 and status["pid"] == running.process.pid
        seen: set[int] = set()
        # New connections are spread by the kernel's hash of their addresses: both
        # workers are seen within a few (64 misses in a row: a chance of 2**-63).
        for _ in range(64):
            seen.add(await _served_by(running.url))
            if seen == pids:
                break
        assert seen == pids


async def test_connect_reaches_a_worker_through_the_supervisors_socket(tmp_path: Path) -> None:
    """``vmcp connect`` relays a stdio client over the supervisor's control socket, which
    carries the session on to a worker: the call is served by one of the workers."""
    async with supervisor(tmp_path) as running:
        pids = {worker["pid"] for worker in (await running.status())["workers"]}
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "vmcp", "--config", str(running.config),
                                          "connect"],
            env={**os.environ, "VMCP_HOME": str(running.home)})
        with anyio.fail_after(START_TIMEOUT), (tmp_path / "connect.log").open("a") as errlog:
            async with (stdio_client(params, errlog=errlog) as (read, write),
                        ClientSession(read, write) as session):
                await session.initialize()
                result = await session.call_tool("who__parent", {})
        assert int(result.content[0].text) in pids  # type: ignore[union-attr]


@dataclass
class Load:
    """Clients calling in a loop, each on its own connection, and what they saw."""

    url: str
    served: dict[int, list[int]] = field(default_factory=dict)
    failures: dict[int, list[str]] = field(default_factory=dict)
    #: per client: the pid of the worker it was last served by when a call failed
    failed_on: dict[int, list[int | None]] = field(default_factory=dict)
    stop: anyio.Event = field(default_factory=anyio.Event)
    _progress: anyio.Event = field(default_factory=anyio.Event)

    async def client(self, index: int) -> None:
        """Call until told to stop; after a failure start over with a new client."""
        served = self.served.setdefault(index, [])
        while not self.stop.is_set():
            try:
                async with Client(self.url, mode=MODERN) as client:
                    while not self.stop.is_set():
                        result = await client.call_tool("who__parent", {})
                        served.append(int(result.content[0].text))  # type: ignore[union-attr]
                        self._progress.set()
                        self._progress = anyio.Event()
            except Exception as exc:
                self.failures.setdefault(index, []).append(repr(exc))
                self.failed_on.setdefault(index, []).append(served[-1] if served else None)

    def marks(self) -> dict[int, int]:
        """How many calls each client has made so far."""
        return {i: len(calls) for i, calls in self.served.items()}

    async def each_made(self, calls: int, since: dict[int, int], clients: int) -> None:
        """Wait until each of ``clients`` clients has made ``calls`` calls since ``since``."""
        with anyio.fail_after(EVENT_TIMEOUT):
            while len(self.served) < clients or min(
                    len(c) - since.get(i, 0) for i, c in self.served.items()) < calls:
                await self._progress.wait()


async def test_a_killed_worker_is_restarted_and_the_other_keeps_serving(
        tmp_path: Path) -> None:
    clients = 8
    async with supervisor(tmp_path) as running:
        load = Load(running.url)
        async with anyio.create_task_group() as group:
            for index in range(clients):
                group.start_soon(load.client, index)
            await load.each_made(3, {}, clients)
            before = await running.status()
            victim, survivor = (w["pid"] for w in before["workers"])
            os.kill(victim, signal.SIGKILL)
            await running.wait_for_lines("worker 0 serves again")
            await load.each_made(5, load.marks(), clients)
            load.stop.set()
        after = await running.status()
    # Only clients whose connection was on the killed worker failed, once each at most.
    assert all(on == [victim] for on in load.failed_on.values()), load.failures
    served = {pid for calls in load.served.values() for pid in calls}
    assert {victim, survivor} <= served
    restarted, other = after["workers"]
    assert restarted["restarts"] == 1 and restarted["state"] == "up"
    assert restarted["pid"] not in (victim, survivor)
    assert (other["pid"], other["restarts"], other["state"]) == (survivor, 0, "up")


async def test_sigterm_drains_then_exits_zero(tmp_path: Path) -> None:
    gate = tmp_path / "gate.fifo"
    async with supervisor(tmp_path) as running, anyio.create_task_group() as group:
        results: list[str] = []

        async def in_flight() -> None:
            async with Client(running.url, mode=MODERN) as client:
                # Listed first, as clients do: the SDK checks a result against the listed
                # output schema, and would list the tools after the call otherwise: a new
                # request, which a stopping gateway refuses.
                await client.list_tools()
                result = await client.call_tool("who__wait", {})
            results.append(result.content[0].text)  # type: ignore[union-attr]

        group.start_soon(in_flight)
        with anyio.fail_after(EVENT_TIMEOUT):
            writer = await anyio.to_thread.run_sync(gate.open, "w")  # the call arrived
        try:
            running.process.send_signal(signal.SIGTERM)
            await running.wait_for_lines("stopping: calls in flight get", 2)
            refused = await _new_request(running.url)
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "1"
            ready = await _get(running.url.rsplit("/", 1)[0] + "/readyz")
            assert (ready.status_code, ready.text) == (503, "not ready: stopping\n")
        finally:
            writer.write("released\n")
            writer.close()
        with anyio.fail_after(EVENT_TIMEOUT):
            assert await running.process.wait() == 0
    assert results == ["released"]


async def _retry_connecting(send: Any) -> httpx2.Response:
    """The first answer to ``send(client)``: the idle worker drains at once and stops
    listening, so a connection may meet it closing (a load balancer retries those too)."""
    async with httpx2.AsyncClient(timeout=EVENT_TIMEOUT) as client:
        with anyio.fail_after(EVENT_TIMEOUT):
            while True:
                try:
                    return await send(client)  # type: ignore[no-any-return]
                except httpx2.TransportError:
                    continue


async def _new_request(url: str) -> httpx2.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list",
            "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}}}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": MODERN}
    return await _retry_connecting(lambda c: c.post(url, json=body, headers=headers))


async def _get(url: str) -> httpx2.Response:
    return await _retry_connecting(lambda c: c.get(url))


def test_stdio_with_workers_is_a_config_error(tmp_path: Path) -> None:
    config = _config(tmp_path, tmp_path / "gate.fifo")
    result = subprocess.run(
        [sys.executable, "-m", "vmcp", "--config", str(config), "start", "--workers", "2"],
        env={**os.environ, "VMCP_HOME": str(tmp_path / "home")}, capture_output=True,
        text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "the stdio front serves the one client that started the gateway" in result.stderr
