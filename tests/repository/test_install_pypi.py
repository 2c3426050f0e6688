"""From a local package index to a working mount: sync, search, install with uv, talk MCP.

The index serves real wheels of our own tiny MCP server (``echo_package``) at versions 1.0.0
and 1.1.0, plus 1.0.5 whose JSON-API hash is wrong, so installing it fails midway (after the
venv was made). The installed server is spawned with the SDK's ``stdio_client``, then reached
through ``vmcp start``; update, rollback and uninstall follow.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from echo_package import SERVER_NAME, build_wheel, sha256, write_index
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from repo_helpers import run_cli

from vmcp.testing import serve_folder

TIMEOUT = 60


@pytest.fixture(scope="module")
def index_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The served index with versions 1.0.0, 1.0.5 (bad hash) and 1.1.0."""
    work = tmp_path_factory.mktemp("echo")
    wheels = {v: build_wheel(work, v, work / "dist") for v in ("1.0.0", "1.0.5", "1.1.0")}
    announced = {v: sha256(w) for v, w in wheels.items()}
    announced["1.0.5"] = "0" * 64
    write_index(work / "index", wheels, announced)
    with serve_folder(work / "index") as url:
        yield url


def mount_table(home: Path) -> dict:
    path = home / "config" / "servers.toml"
    return tomllib.loads(path.read_text()).get("servers", {}) if path.exists() else {}


async def _shout(params: StdioServerParameters, tool: str) -> tuple[list[str], str]:
    with anyio.fail_after(TIMEOUT):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = [t.name for t in (await session.list_tools()).tools]
            result = await session.call_tool(tool, {"text": "hi"})
            return tools, result.content[0].text


def call_mount(entry: dict) -> tuple[list[str], str]:
    """Spawn a mount's command directly and call its ``shout`` tool."""
    params = StdioServerParameters(command=entry["command"], args=entry.get("args", []))
    return anyio.run(_shout, params, "shout")


def call_through_gateway(home: Path, tool: str) -> tuple[list[str], str]:
    """Start ``vmcp start`` on this home and call ``tool`` through it."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "vmcp", "start"], env={"VMCP_HOME": str(home)}
    )
    return anyio.run(_shout, params, tool)


def test_install_mount_call_update_rollback_uninstall(home: Path, index_url: str) -> None:
    run_cli("repo", "add", index_url, "--name", "local", "--type", "pypi")
    sync = run_cli("repo", "sync")
    assert "local: 3 manifests" in sync.output
    hits = json.loads(run_cli("search", "echo", "--json").output)
    assert [(h["name"], h["version"]) for h in hits] == [(SERVER_NAME, "1.1.0")]
    # the package name users know finds the server too; the README can be left out
    shown = run_cli("show", "vmcp-test-echo", "--no-readme").output
    assert shown.startswith(f"{SERVER_NAME} 1.1.0\n")
    assert "lines (left out)" in shown and "# Echo" not in shown
    assert "# Echo" in run_cli("show", "vmcp-test-echo").output

    # without a terminal to ask on, nothing is installed and --yes is named
    unasked = run_cli("install", "echo@1.0.0", ok=False)
    assert unasked.exit_code == 1 and "run again with --yes" in unasked.output
    assert "Aborted" not in unasked.output
    assert not (home / "installed" / "servers").exists()

    # install a pinned version: the plan is shown, the venv made, the mount added
    out = run_cli("install", "echo@1.0.0", "--yes").output
    version_dir = home / "installed" / "servers" / "io.github.vmcp-tests%2Fecho" / "1.0.0"
    assert f"into {version_dir}" in out and "uv pip install" in out
    assert "--hash=sha256:" in out and "mounted as 'echo'" in out
    assert "  running uv pip ..." in out and re.search(r"uv pip done in \d+\.\ds", out)
    entry = mount_table(home)["echo"]
    assert entry["command"] == str(version_dir / "venv" / "bin" / "vmcp-test-echo")
    tools, text = call_mount(entry)
    assert tools == ["shout"] and text == "HI! (1.0.0)"

    tools, text = call_through_gateway(home, "echo__shout")
    assert "echo__shout" in tools and text == "HI! (1.0.0)"

    # a failing install (hash mismatch after the venv exists) leaves nothing behind
    failed = run_cli("install", "echo@1.0.5", "--yes", ok=False)
    assert failed.exit_code == 1 and "sha256" in failed.output.lower()
    assert not (version_dir.parent / "1.0.5").exists()
    assert mount_table(home)["echo"] == entry
    assert json.loads(run_cli("installed", "--json").output)[0]["version"] == "1.0.0"

    # update installs the newest and switches the mount; rollback switches back
    out = run_cli("update", "echo", "--yes").output
    assert "updated io.github.vmcp-tests/echo 1.0.0 -> 1.1.0; mount echo now uses it" in out
    assert call_mount(mount_table(home)["echo"])[1] == "HI! (1.1.0)"
    rows = json.loads(run_cli("installed", "--json").output)
    assert [(r["version"], r["current"], r["previous"]) for r in rows] == [
        ("1.1.0", True, False), ("1.0.0", False, True)]
    assert "is the newest version" in run_cli("update", "echo").output

    assert "back from 1.1.0 to 1.0.0" in run_cli("rollback", "echo").output
    assert mount_table(home)["echo"] == entry

    # uninstall: refused while mounted, a version not in use goes, --force unmounts
    refused = run_cli("uninstall", "echo", ok=False)
    assert refused.exit_code == 1 and "mounted as echo" in refused.output
    run_cli("uninstall", "echo@1.1.0")
    assert not (version_dir.parent / "1.1.0").exists()
    out = run_cli("uninstall", "echo", "--force").output
    assert "unmounted echo" in out
    assert not version_dir.parent.exists()
    assert mount_table(home) == {}


def _json_of(*args: str) -> dict:
    """Run ``vmcp ARGS --json``; its stdout is one JSON document (notes go to stderr)."""
    return json.loads(run_cli(*args, "--json").stdout)


def test_pinned_mounts_keep_their_version_and_changes_are_said(home: Path,
                                                                index_url: str) -> None:
    assert _json_of("repo", "add", index_url, "--name", "local", "--type", "pypi") == {
        "name": "local", "type": "pypi", "url": index_url, "settings": {}}
    run_cli("repo", "sync")
    done = _json_of("install", "echo@1.0.0", "--yes")
    assert done == {"name": SERVER_NAME, "version": "1.0.0", "installed": True,
                    "mount": "echo", "pinned": False, "switched": [], "kept": {}}
    held = _json_of("install", "echo@1.0.0", "--id", "echo-held", "--pin", "--yes")
    assert (held["installed"], held["mount"], held["pinned"]) == (False, "echo-held", True)

    # update says which mount moves and which stays, before it installs anything
    result = run_cli("update", "echo", "--yes", "--json")
    assert "mount echo changes from 1.0.0 to 1.1.0" in result.stderr
    assert "mount echo-held stays at 1.0.0 (pinned" in result.stderr
    assert json.loads(result.stdout) == {"name": SERVER_NAME, "from": "1.0.0", "to": "1.1.0",
                                         "switched": ["echo"], "kept": {"echo-held": "1.0.0"}}
    table = mount_table(home)
    assert call_mount(table["echo"])[1] == "HI! (1.1.0)"
    assert call_mount(table["echo-held"])[1] == "HI! (1.0.0)"
    rows = {r["version"]: r for r in json.loads(run_cli("installed", "--json").output)}
    assert (rows["1.1.0"]["mounts"], rows["1.0.0"]["mounts"]) == (["echo"], ["echo-held"])
    assert rows["1.0.0"]["pinned"] == ["echo-held"]

    back = _json_of("rollback", "vmcp-test-echo")  # the package name users know works too
    assert (back["from"], back["to"], back["switched"]) == ("1.1.0", "1.0.0", ["echo"])

    # another version under a new id: the new mount is pinned, the others keep theirs
    before = mount_table(home)
    added = _json_of("install", "echo@1.1.0", "--id", "echo-new", "--yes")
    assert (added["mount"], added["pinned"]) == ("echo-new", True)
    after = mount_table(home)
    assert {k: after[k] for k in before} == before
    assert call_mount(after["echo-new"])[1] == "HI! (1.1.0)"

    # moving existing mounts to an installed version still asks, and names --yes
    moving = run_cli("install", "echo@1.1.0", ok=False)
    assert "mount echo changes from 1.0.0 to 1.1.0" in moving.output
    assert moving.exit_code == 1 and "run again with --yes" in moving.output
    assert mount_table(home) == after

    assert _json_of("unpin", "echo-held") == {
        "id": "echo-held", "name": SERVER_NAME, "version": "1.0.0", "pinned": False}
    assert _json_of("pin", "echo-held", "1.1.0")["version"] == "1.1.0"
    assert call_mount(mount_table(home)["echo-held"])[1] == "HI! (1.1.0)"
    unknown = run_cli("pin", "echo-held", "9.9", ok=False)
    assert unknown.exit_code == 1 and "9.9 is not installed" in unknown.output

    mounted = _json_of("mount", "echo@1.1.0", "--id", "echo-m")
    assert mounted == {"name": SERVER_NAME, "version": "1.1.0", "id": "echo-m", "pinned": True,
                       "live": False, "mount": None}
    assert _json_of("unmount", "echo-m") == {"live": False, "id": "echo-m", "removed": True,
                                             "server": SERVER_NAME}
    refused = run_cli("uninstall", "echo@1.1.0", ok=False)
    assert "mounted as echo-held, echo-new" in refused.output
    gone = _json_of("uninstall", "echo", "--force")
    assert gone == {"name": SERVER_NAME, "removed": ["1.0.0", "1.1.0"],
                    "unmounted": ["echo", "echo-held", "echo-new"]}
    assert mount_table(home) == {}

