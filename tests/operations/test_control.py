"""The control endpoint of a foreground gateway, a control-only daemon, the protocol's
refusals, and the client commands with and without a running gateway."""

from __future__ import annotations

import json
import socket
import stat
import sys
from pathlib import Path

import anyio
import mcp.types as types
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from ops_harness import ALPHA, REPLICA, Home, backend

EVENT_TIMEOUT = 15.0


def control_lines(path: Path, *lines: bytes) -> list[dict[str, object]]:
    """Send raw lines on the control socket; the responses, one per line."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(b"".join(lines))
        with sock.makefile("rb") as stream:
            return [json.loads(stream.readline()) for _ in lines]


@pytest.mark.anyio
async def test_foreground_stdio_gateway_serves_control(home: Home) -> None:
    home.write({"servers.alpha": backend(ALPHA), "servers.replica": backend(REPLICA)})
    params = StdioServerParameters(command=sys.executable, args=["-m", "vmcp", "start"],
                                   env=home.env())
    changed = anyio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    with (home.path / "stderr.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, message_handler=on_message) as session,
        ):
            with anyio.fail_after(EVENT_TIMEOUT):
                await session.initialize()
            sock = home.path / "run" / "control.sock"
            assert stat.S_IMODE(sock.stat().st_mode) == 0o600
            assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
            status = await anyio.to_thread.run_sync(home.cli_json, "status")
            assert status["fronts"] == [{"name": "stdio", "where": "stdin/stdout"}]
            assert status["sessions"] == 1 and status["requests"] is None

            out = await anyio.to_thread.run_sync(home.cli, "unmount", "replica")
            assert out.exit_code == 0, out.stderr
            with anyio.fail_after(EVENT_TIMEOUT):
                await changed.wait()
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert "alpha__echo" in names and "replica__whoami" not in names

            called = await anyio.to_thread.run_sync(home.cli, "call", "alpha__add", "a=2",
                                                    "b=3", "--json")
            assert json.loads(called.stdout)["structuredContent"] == {"sum": 5}

            refused = control_lines(sock, b"not json\n", b'{"op": "explode"}\n',
                                    b'{"op": "info", "args": {"id": "replica"}}\n')
            assert [r["ok"] for r in refused] == [False, False, False]
            assert "unknown operation 'explode'" in str(refused[1]["error"])
            assert "'replica' is not mounted" in str(refused[2]["error"])
    # The client left: the gateway ended and took its run files with it.
    assert not (home.path / "run" / "vmcp.pid").exists()
    assert not sock.exists()


def test_control_only_daemon(home: Home) -> None:
    home.write({"gateway": {"fronts": []}, "servers.alpha": backend(ALPHA)})
    started = home.vmcp("start", "-d")
    assert started.returncode == 0, started.stderr
    tools = home.cli_json("tools")
    assert "alpha__echo" in {tool["name"] for tool in tools}
    called = home.cli("call", "alpha__echo", "text=through control")
    assert called.exit_code == 0 and called.stdout.strip() == "alpha: through control"
    failed = home.cli("call", "alpha__fail")
    assert failed.exit_code == 1
    unknown = home.cli("call", "nope__nothing")
    assert unknown.exit_code == 1 and "Unknown tool" in unknown.stderr
    info = home.cli_json("info", "alpha")
    assert info["server"]["name"] == "alpha" and info["health"]["state"] == "up"
    lint = home.cli_json("tools", "--lint")
    assert lint["ok"] is True and "alpha__echo" in {entry["name"] for entry in lint["names"]}
    stopped = home.vmcp("stop")
    assert stopped.returncode == 0, stopped.stderr


def test_client_commands_without_a_gateway(home: Home) -> None:
    home.write({"servers.alpha": backend(ALPHA)})
    tools = home.cli_json("tools")
    assert "alpha__add" in {tool["name"] for tool in tools}
    called = home.cli("call", "alpha__add", "a=1.5", "b=2", "--json")
    assert called.exit_code == 0, called.stderr
    assert json.loads(called.stdout)["structuredContent"] == {"sum": 3.5}
    assert home.cli("call", "alpha__add", "oops").exit_code == 2


def test_mount_and_unmount_edit_the_configuration(home: Home) -> None:
    home.config.parent.mkdir(parents=True)
    servers = home.config.parent / "servers.toml"
    servers.write_text(
        "# my servers\n"
        f"[servers.alpha]  # the fixture\ncommand = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(str(ALPHA))}]\n\n"
        "[servers.alpha.health]\ninterval = 0\n")
    out = home.cli("unmount", "alpha")
    assert out.exit_code == 0, out.stderr
    text = servers.read_text()
    assert "# my servers" in text and "# the fixture" in text
    assert home.cli_json("list")[0]["state"] == "disabled"
    assert home.cli("mount", "alpha").exit_code == 0
    assert home.cli_json("list")[0]["state"] == "enabled"
    assert servers.read_text().count("enabled = true") == 1
    assert home.cli("unmount", "nope").exit_code == 1


def test_unmount_on_a_fresh_install_writes_the_demo_table(home: Home) -> None:
    out = home.cli("unmount", "notes")
    assert out.exit_code == 0, out.stderr
    rows = {row["id"]: row["state"] for row in home.cli_json("list")}
    assert rows == {"toolbox": "enabled", "notes": "disabled"}
