"""``vmcp add`` and ``vmcp remove``: the mount table from the command line, applied live to a
gateway an SDK client is connected to."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import anyio
import mcp.types as types
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from ops_harness import ALPHA, REPLICA, Home, backend

EVENT_TIMEOUT = 15.0


def _table(home: Home) -> dict[str, object]:
    return tomllib.loads((home.config.parent / "servers.toml").read_text())["servers"]


@pytest.mark.anyio
async def test_add_and_remove_on_a_running_gateway(home: Home) -> None:
    home.write({"servers.alpha": backend(ALPHA)})
    params = StdioServerParameters(command=sys.executable, args=["-m", "vmcp", "start"],
                                   env=home.env())
    changed = anyio.Event()

    async def on_message(message: object) -> None:
        nonlocal changed
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    with (home.path / "stderr.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, message_handler=on_message) as session,
        ):
            with anyio.fail_after(EVENT_TIMEOUT):
                await session.initialize()
            out = await anyio.to_thread.run_sync(
                home.cli, "add", "beta", "--env", "MODE=x", "--", sys.executable, str(REPLICA))
            assert out.exit_code == 0, out.stdout + out.stderr
            assert "added beta to" in out.stdout and "beta: up," in out.stdout
            assert _table(home)["beta"] == {"command": sys.executable, "args": [str(REPLICA)],
                                            "env": {"MODE": "x"}}
            with anyio.fail_after(EVENT_TIMEOUT):
                await changed.wait()
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert "beta__whoami" in names and "alpha__echo" in names
            result = await session.call_tool("beta__whoami", {})
            assert not result.is_error
            # `vmcp call` completes tool names from the running gateway
            completed = await anyio.to_thread.run_sync(lambda: subprocess.run(
                [str(Path(sys.executable).parent / "vmcp")], capture_output=True, text=True,
                env={**home.env(), "_VMCP_COMPLETE": "bash_complete",
                     "COMP_WORDS": "vmcp call beta__who", "COMP_CWORD": "2"},
                timeout=60, check=False))
            assert completed.stdout.split() == ["plain,beta__whoami"]

            changed = anyio.Event()
            gone = await anyio.to_thread.run_sync(home.cli, "remove", "beta")
            assert gone.exit_code == 0, gone.stderr
            assert "and unmounted it" in gone.stdout
            with anyio.fail_after(EVENT_TIMEOUT):
                await changed.wait()
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert not any(n.startswith("beta__") for n in names)
            assert "beta" not in _table(home)

            broken = await anyio.to_thread.run_sync(
                home.cli, "add", "broken", "--", sys.executable, "-c", "raise SystemExit(3)")
            assert broken.exit_code == 1
            assert "broken: failed:" in broken.stdout

            # The entry stays in the table; a reload tries it again and says why it failed.
            reloaded = await anyio.to_thread.run_sync(home.cli, "reload")
            assert reloaded.exit_code == 1
            assert "error: broken failed to mount: " in reloaded.stderr
            assert "mounted broken" not in reloaded.stdout
            as_json = await anyio.to_thread.run_sync(home.cli, "reload", "--json")
            assert as_json.exit_code == 1
            listed = await anyio.to_thread.run_sync(home.cli, "list")
            assert listed.exit_code == 0
            assert "broken: failed: " in listed.stderr
            rows = {r["id"]: r for r in await anyio.to_thread.run_sync(home.cli_json, "list")}
            assert rows["broken"]["state"] == "failed" and rows["broken"]["error"]
            assert rows["alpha"]["error"] is None
            info = await anyio.to_thread.run_sync(home.cli, "info", "broken")
            assert info.exit_code == 1 and "broken is failed: " in info.stderr
            status = await anyio.to_thread.run_sync(home.cli_json, "status")
            [failed] = [m for m in status["mounts"] if m["id"] == "broken"]
            assert failed["state"] == "failed" and failed["error"]


def test_add_checks_before_writing(home: Home) -> None:
    home.write({"servers.alpha": backend(ALPHA)})
    both = home.cli("add", "x", "--url", "http://127.0.0.1:1/mcp", "--", "cmd")
    assert both.exit_code == 2 and "either a command" in both.stderr
    typo = home.cli("add", "x", "--url", "http://127.0.0.1:1/mcp", "--transport", "htp")
    assert typo.exit_code == 2
    assert "no transport 'htp'" in typo.stderr and "did you mean 'http'?" in typo.stderr
    badid = home.cli("add", "Bad_Id", "--", "cmd")
    assert badid.exit_code == 2 and "must match" in badid.stderr
    taken = home.cli("add", "alpha", "--", "cmd")
    assert taken.exit_code == 1 and "--replace" in taken.stderr
    assert not (home.config.parent / "servers.toml").exists()

    remote = home.cli("add", "docs", "--url", "https://docs.example/sse",
                      "--header", "Authorization=Bearer ${DOCS_TOKEN}", "--json")
    assert remote.exit_code == 0, remote.stderr
    assert _table(home)["docs"] == {"transport": "sse", "url": "https://docs.example/sse",
                                    "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}}
    listed = home.cli_json("list")
    assert {row["id"] for row in listed} == {"alpha", "docs"}
    inline = home.cli("remove", "alpha")
    assert inline.exit_code == 1 and "remove its table there" in inline.stderr
