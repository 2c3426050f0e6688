"""``vmcp connect``: stdio clients sharing one long-running gateway, started the way Claude
Desktop starts servers (small PATH, in ``/``, only the entry's env)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import mcp.types as types
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from ops_harness import ALPHA, REPLICA, Home, backend

EVENT_TIMEOUT = 20.0


def _client_add(home: Home, user_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**home.env(), "HOME": str(user_home)}
    return subprocess.run([sys.executable, "-m", "vmcp", "client", "add", "claude-desktop",
                           *args], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.anyio
@pytest.mark.parametrize("way", ["socket", "http"])
async def test_two_stdio_clients_share_one_gateway(home: Home, tmp_path: Path, way: str) -> None:
    """By default the relay goes over the control socket (here to a gateway with no HTTP
    front at all); given a URL, over HTTP."""
    front = "ws" if way == "socket" else "http"
    home.write({"gateway": {"fronts": [front], "shutdown_grace": 2.0},
                f"transports.{front}": {"port": 0},
                "servers.alpha": backend(ALPHA),
                "servers.replica": backend(REPLICA, enabled=False)})
    started = home.vmcp("start", "-d")
    assert started.returncode == 0, started.stderr

    added = _client_add(home, tmp_path)
    assert added.returncode == 0, added.stderr
    assert "relays to the gateway running with this home" in added.stdout
    config = tmp_path / ".config" / "Claude" / "claude_desktop_config.json"
    entry = json.loads(config.read_text())["mcpServers"]["vmcp"]
    assert entry["args"] == ["connect"]
    if way == "http":
        [url] = [f["where"] for f in home.cli_json("status")["fronts"] if f["name"] == "http"]
        assert url.startswith("http://127.0.0.1:")
        entry["args"].append(url)
    spawned = json.loads(_client_add(home, tmp_path, "--spawn", "--print").stdout)
    assert spawned["mcpServers"]["vmcp"]["args"] == ["start"]

    params = StdioServerParameters(command=entry["command"], args=entry["args"],
                                   env={"PATH": "/usr/bin:/bin", **entry["env"]}, cwd="/")
    changed = anyio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    with (tmp_path / "bridges.log").open("w") as errlog, anyio.fail_after(60):
        async with (
            stdio_client(params, errlog=errlog) as (read1, write1),
            ClientSession(read1, write1, message_handler=on_message) as first,
            stdio_client(params, errlog=errlog) as (read2, write2),
            ClientSession(read2, write2) as second,
        ):
            await first.initialize()
            await second.initialize()
            echoed = await first.call_tool("alpha__echo", {"text": "one"})
            assert echoed.content[0].text == "alpha: one"  # type: ignore[union-attr]
            echoed = await second.call_tool("alpha__echo", {"text": "two"})
            assert echoed.content[0].text == "alpha: two"  # type: ignore[union-attr]
            status = await anyio.to_thread.run_sync(home.cli_json, "status")
            assert status["sessions"] == 2

            # The one gateway's control commands reach every client behind a bridge.
            mounted = await anyio.to_thread.run_sync(home.cli, "mount", "replica")
            assert mounted.exit_code == 0, mounted.stderr
            with anyio.fail_after(EVENT_TIMEOUT):
                await changed.wait()
            names = {tool.name for tool in (await first.list_tools()).tools}
            assert "replica__whoami" in names
    stopped = home.vmcp("stop")
    assert stopped.returncode == 0, stopped.stderr


def test_connect_without_a_gateway_says_what_to_do(home: Home) -> None:
    done = subprocess.run([sys.executable, "-m", "vmcp", "connect"], env=home.env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 1
    assert "no gateway is running with this home" in done.stderr
    assert "vmcp start -d -t http" in done.stderr
    assert not list(home.path.iterdir())


@pytest.mark.anyio
async def test_a_second_stdio_gateway_says_what_it_does(home: Home, tmp_path: Path) -> None:
    home.write({"servers.alpha": backend(ALPHA)})
    params = StdioServerParameters(command=sys.executable, args=["-m", "vmcp", "start"],
                                   env=home.env())
    second_log = tmp_path / "second.log"
    with (tmp_path / "first.log").open("w") as first_err, second_log.open("w") as second_err, \
            anyio.fail_after(60):
        async with (
            stdio_client(params, errlog=first_err) as (read1, write1),
            ClientSession(read1, write1) as first,
        ):
            await first.initialize()
            async with (
                stdio_client(params, errlog=second_err) as (read2, write2),
                ClientSession(read2, write2) as second,
            ):
                await second.initialize()
                echoed = await second.call_tool("alpha__echo", {"text": "x"})
                assert echoed.content[0].text == "alpha: x"  # type: ignore[union-attr]
    text = " ".join(second_log.read_text().split())
    assert "a gateway is already running with this home" in text
    assert "serves only the client that started it, with backends of its own" in text
    assert "vmcp start -d -t http" in text and "vmcp connect" in text


@pytest.mark.anyio
async def test_connect_as_a_persona_over_the_socket(home: Home, tmp_path: Path) -> None:
    home.write({"gateway": {"fronts": ["ws"], "shutdown_grace": 2.0},
                "transports.ws": {"port": 0},
                "servers.alpha": backend(ALPHA),
                "servers.replica": backend(REPLICA)})
    for args in (("persona", "create", "narrow"), ("persona", "narrow", "enable", "alpha")):
        done = home.vmcp(*args)
        assert done.returncode == 0, done.stderr
    started = home.vmcp("start", "-d")
    assert started.returncode == 0, started.stderr

    unknown = home.vmcp("connect", "--persona", "nobody")
    assert unknown.returncode == 1 and "nobody" in unknown.stderr
    added = _client_add(home, tmp_path, "--persona", "narrow", "--print")
    assert added.returncode == 0, added.stderr
    entry = json.loads(added.stdout)["mcpServers"]["vmcp"]
    assert entry["args"] == ["connect", "--persona", "narrow"]

    async def tool_names(args: list[str]) -> set[str]:
        params = StdioServerParameters(command=entry["command"], args=args,
                                       env={"PATH": "/usr/bin:/bin", **entry["env"]}, cwd="/")
        with (tmp_path / "bridge.log").open("a") as errlog:
            async with (stdio_client(params, errlog=errlog) as (read, write),
                        ClientSession(read, write) as session):
                await session.initialize()
                return {tool.name for tool in (await session.list_tools()).tools}

    with anyio.fail_after(60):
        narrow = await tool_names(entry["args"])
        everything = await tool_names(["connect"])
    assert narrow and [n for n in narrow if not n.startswith("alpha__")] == []
    assert any(name.startswith("replica__") for name in everything)
    stopped = home.vmcp("stop")
    assert stopped.returncode == 0, stopped.stderr
