"""A real detached gateway: start, status, live mount and unmount under a connected SDK
client, reload, metrics, stop; and the refusals around it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp.types as types
import pytest
from click.testing import Result
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from ops_harness import (
    ALPHA,
    REPLICA,
    Home,
    alive,
    backend,
    scrape,
    wait_for_text,
    wait_gone,
)

EVENT_TIMEOUT = 15.0


def daemon_config(**servers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An HTTP front and the metrics endpoint on free ports, and these mounts."""
    return {
        "gateway": {"fronts": ["http"], "shutdown_grace": 2.0},
        "transports.http": {"port": 0},
        "monitoring": {"metrics_port": 0},
        **{f"servers.{name}": settings for name, settings in servers.items()},
    }


class ToolListChanges:
    """A ``message_handler`` counting ``tools/list_changed`` notifications."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = anyio.Event()

    async def __call__(self, message: Any) -> None:
        """Called by ``ClientSession`` for each server message."""
        if isinstance(message, types.ToolListChangedNotification):
            self.count += 1
            changed, self._changed = self._changed, anyio.Event()
            changed.set()

    async def wait_for(self, count: int) -> None:
        """Wait until ``count`` notifications arrived in all."""
        with anyio.fail_after(EVENT_TIMEOUT):
            while self.count < count:
                await self._changed.wait()


@asynccontextmanager
async def http_client(url: str, handler: ToolListChanges) -> AsyncIterator[ClientSession]:
    """An initialized SDK session over Streamable HTTP."""
    async with (
        streamable_http_client(url) as (read, write),
        ClientSession(read, write, message_handler=handler) as session,
    ):
        with anyio.fail_after(EVENT_TIMEOUT):
            await session.initialize()
        yield session


async def tool_names(session: ClientSession) -> set[str]:
    """Every tool name the gateway lists (following pages)."""
    names: set[str] = set()
    cursor = None
    while True:
        page = await session.list_tools(
            params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        names |= {tool.name for tool in page.tools}
        cursor = page.next_cursor
        if cursor is None:
            return names


async def run(home: Home, *args: str) -> Result:
    """``vmcp ARGS`` (in-process) in a worker thread, so the client session keeps reading."""
    return await anyio.to_thread.run_sync(lambda: home.cli(*args))


def requests_of(samples: dict[str, float], mount: str) -> float:
    """``vmcp_requests_total`` of one mount's successful tool calls."""
    return samples.get(
        f'vmcp_requests_total{{method="tools/call",mount="{mount}",outcome="ok"}}', 0.0)


@pytest.mark.anyio
async def test_daemon_lifecycle(home: Home) -> None:
    # replica reports its own pid, which must be the one vmcp started: no warm start for it
    replica_mount = backend(REPLICA, enabled=False, env={"VMCP_TEST_PREFORK": "off"})
    home.write(daemon_config(alpha=backend(ALPHA), replica=replica_mount))
    started = home.vmcp("start", "-d")
    assert started.returncode == 0, started.stderr
    url = re.search(r"http: (\S+)", started.stdout).group(1)  # type: ignore[union-attr]
    gateway_pid = int(home.pid_file.read_text())
    assert alive(gateway_pid)

    second = home.cli("start", "-d")
    assert second.exit_code == 1
    assert f"already running with this home (pid {gateway_pid})" in second.stderr

    status = home.cli_json("status")
    assert status["running"] and status["pid"] == gateway_pid
    assert status["log"] == str(home.path / "logs" / "vmcp.log")
    assert status["fronts"] == [{"name": "http", "where": url}]
    assert [(m["id"], m["state"]) for m in status["mounts"]] == [("alpha", "up")]
    backend_pids = [r["pid"] for m in status["mounts"] for r in m["replicas"]]
    metrics_url = status["metrics"]

    changes = ToolListChanges()
    async with http_client(url, changes) as session:
        names = await tool_names(session)
        assert "alpha__echo" in names and not any(n.startswith("replica__") for n in names)

        mounted = await run(home, "mount", "replica")
        assert mounted.exit_code == 0, mounted.stderr
        await changes.wait_for(1)
        assert "replica__whoami" in await tool_names(session)
        whoami = await session.call_tool("replica__whoami", {})
        replica_pid = int(whoami.content[0].text)  # type: ignore[union-attr]
        status = home.cli_json("status")
        assert status["sessions"] == 1
        replica = next(m for m in status["mounts"] if m["id"] == "replica")
        assert replica["state"] == "up" and replica["replicas"][0]["pid"] == replica_pid
        assert replica["replicas"][0]["circuit"] == "closed" and replica["requests"] == 1
        backend_pids.append(replica_pid)
        listed = {row["id"]: row for row in home.cli_json("list")}
        assert listed["replica"]["state"] == "up"
        assert listed["alpha"]["tools"] == sum(1 for n in names if n.startswith("alpha__"))

        unmounted = await run(home, "unmount", "replica")
        assert unmounted.exit_code == 0, unmounted.stderr
        await changes.wait_for(2)
        assert not any(n.startswith("replica__") for n in await tool_names(session))
        assert wait_gone(replica_pid), "an unmounted backend must end"

        # The session stayed connected through both changes; calls are counted.
        before = requests_of(scrape(metrics_url), "alpha")
        echoed = await session.call_tool("alpha__echo", {"text": "still here"})
        assert echoed.content[0].text == "alpha: still here"  # type: ignore[union-attr]
        samples = scrape(metrics_url)
        assert requests_of(samples, "alpha") == before + 1
        latency = 'vmcp_request_duration_seconds_count{method="tools/call",mount="alpha"}'
        assert samples[latency] >= 1
        assert samples["vmcp_sessions"] == 1
        assert samples['vmcp_circuit_state{mount="alpha",replica="alpha-0",state="closed"}'] == 1

        # A bad file is rejected with its errors and the running configuration stays.
        good = home.config.read_text()
        home.config.write_text(good + "\n[servers.broken]\nargs = 3\n")
        rejected = await run(home, "reload")
        assert rejected.exit_code == 2
        assert "servers.broken" in rejected.stderr
        assert "alpha__echo" in await tool_names(session)

        # A good one is applied: the replica mount, now enabled, comes up.
        home.config.write_text(good.replace("enabled = false", "enabled = true"))
        reloaded = await run(home, "reload", "--json")
        assert reloaded.exit_code == 0, reloaded.stderr
        assert json.loads(reloaded.stdout)["added"] == ["replica"]
        await changes.wait_for(3)
        assert "replica__whoami" in await tool_names(session)
        status = home.cli_json("status")
        backend_pids += [r["pid"] for m in status["mounts"] for r in m["replicas"]]

    stopped = home.vmcp("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not alive(gateway_pid)
    assert not [pid for pid in backend_pids if alive(pid)], "no backend may outlive the gateway"
    assert not home.pid_file.exists()
    assert not (home.path / "run" / "control.sock").exists()
    assert home.cli("status").exit_code == 1
    log = (home.path / "logs" / "vmcp.log").read_text()
    assert "mounted replica" in log and "configuration reloaded" in log


def test_stale_pid_file_is_cleaned(home: Home) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    home.pid_file.parent.mkdir(parents=True)
    home.pid_file.write_text(gone.stdout)
    out = home.cli("status")
    assert out.exit_code == 1
    assert "vmcp is not running" in out.stdout
    assert f"stale pid file (pid {gone.stdout.strip()} is gone)" in out.stderr
    assert not home.pid_file.exists()


def test_detached_stdio_is_refused(home: Home) -> None:
    home.write({"servers.alpha": backend(ALPHA)})
    out = home.cli("start", "-d")
    assert out.exit_code == 2
    assert "cannot serve stdio" in out.stderr
    assert not home.pid_file.exists()


@pytest.mark.anyio
async def test_stop_lets_a_call_in_flight_finish(home: Home) -> None:
    # A foreground gateway (its client over stdio reads to the end without transport errors
    # when it goes); the stop path is the detached gateway's.
    home.write({"gateway": {"shutdown_grace": 20.0}, "servers.alpha": backend(ALPHA)})
    params = StdioServerParameters(command=sys.executable, args=["-m", "vmcp", "start"],
                                   env=home.env())
    asked, release, answered, gone = anyio.Event(), anyio.Event(), anyio.Event(), anyio.Event()

    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> Any:
        # The call stays in flight at the backend until the gateway has begun to stop.
        asked.set()
        await release.wait()
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="late answer"),
            model="test-model")

    results: list[types.CallToolResult] = []
    stopped: list[subprocess.CompletedProcess[str]] = []
    with (home.path / "stderr.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, sampling_callback=sampling) as session,
            anyio.create_task_group() as group,
        ):
            with anyio.fail_after(EVENT_TIMEOUT):
                await session.initialize()
                # the SDK validates a result against the listed tools, listing them after
                # the call if it has not yet: a stopping gateway would refuse that request
                await session.list_tools()

            async def call() -> None:
                results.append(await session.call_tool("alpha__sample", {"prompt": "hi"}))
                answered.set()

            async def stop() -> None:
                stopped.append(await anyio.to_thread.run_sync(home.vmcp, "stop"))
                gone.set()

            group.start_soon(call)
            with anyio.fail_after(EVENT_TIMEOUT):
                await asked.wait()
            group.start_soon(stop)
            drains = await anyio.to_thread.run_sync(
                wait_for_text, home.path / "stderr.log", "calls in flight get")
            assert drains, "the gateway should log that it lets the call finish"
            release.set()
            with anyio.fail_after(EVENT_TIMEOUT):
                await answered.wait()
                await gone.wait()
    text = results[0].content[0].text  # type: ignore[union-attr]
    assert text == "sampled: late answer (test-model)"
    assert stopped[0].returncode == 0, stopped[0].stderr
    assert not home.pid_file.exists()
