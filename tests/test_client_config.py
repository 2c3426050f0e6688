"""``vmcp client add|list|remove``: vmcp's entry in each MCP client's own configuration file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from vmcp.clients import CLIENTS, build_entry, vmcp_launcher

#: where each client keeps its servers, relative to the user's home on Linux
LINUX_PATHS = {
    "claude-desktop": ".config/Claude/claude_desktop_config.json",
    "claude-code": ".claude.json",
    "cursor": ".cursor/mcp.json",
    "vscode": ".config/Code/User/mcp.json",
    "windsurf": ".codeium/windsurf/mcp_config.json",
}
KEYS = {"vscode": "servers"}
TYPED = {"claude-code", "vscode"}


def _vmcp(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "VMCP_HOME": str(home / "vmcp-home")}
    return subprocess.run([sys.executable, "-m", "vmcp", *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def _key(client: str) -> str:
    return KEYS.get(client, "mcpServers")


def test_paths_per_platform(tmp_path: Path) -> None:
    for name, relative in LINUX_PATHS.items():
        assert CLIENTS[name].config_path(tmp_path, "linux") == tmp_path / relative
    support = tmp_path / "Library" / "Application Support"
    assert (CLIENTS["claude-desktop"].config_path(tmp_path, "darwin")
            == support / "Claude" / "claude_desktop_config.json")
    assert (CLIENTS["vscode"].config_path(tmp_path, "darwin")
            == support / "Code" / "User" / "mcp.json")
    assert CLIENTS["cursor"].config_path(tmp_path, "darwin") == tmp_path / ".cursor" / "mcp.json"


def test_launcher_falls_back_to_the_interpreter(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert vmcp_launcher() == (str(Path(sys.executable).absolute().parent / "vmcp"), [])
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python3"))
    assert vmcp_launcher() == (str(tmp_path / "python3"), ["-m", "vmcp"])


def test_entry_passes_persona_and_config(tmp_path: Path) -> None:
    entry = build_entry(CLIENTS["vscode"], tmp_path, "coder", tmp_path / "v.toml")
    assert entry["type"] == "stdio"
    assert entry["args"][-4:] == ["--config", str(tmp_path / "v.toml"), "start", "--persona"] \
        or entry["args"][-5:] == ["--config", str(tmp_path / "v.toml"), "start", "--persona",
                                  "coder"]
    assert entry["env"] == {"VMCP_HOME": str(tmp_path)}


@pytest.mark.parametrize("client", sorted(LINUX_PATHS))
def test_add_list_remove(tmp_path: Path, client: str) -> None:
    path = tmp_path / LINUX_PATHS[client]
    path.parent.mkdir(parents=True, exist_ok=True)
    original = {"theme": "dark", _key(client): {"other": {"command": "/bin/true", "args": []}}}
    path.write_text(json.dumps(original), "utf-8")

    printed = _vmcp(tmp_path, "client", "add", client, "--print")
    assert printed.returncode == 0, printed.stderr
    assert json.loads(path.read_text("utf-8")) == original
    assert not path.with_name(path.name + ".bak").exists()

    added = _vmcp(tmp_path, "client", "add", client)
    assert added.returncode == 0, added.stderr
    data = json.loads(path.read_text("utf-8"))
    assert data["theme"] == "dark"
    assert data[_key(client)]["other"] == original[_key(client)]["other"]
    entry = data[_key(client)]["vmcp"]
    assert entry == json.loads(printed.stdout)[_key(client)]["vmcp"]
    assert entry["command"] == str(Path(sys.executable).absolute().parent / "vmcp")
    assert entry["args"] == ["start"]
    assert entry["env"] == {"VMCP_HOME": str(tmp_path / "vmcp-home")}
    assert (entry.get("type") == "stdio") == (client in TYPED)
    assert json.loads(path.with_name(path.name + ".bak").read_text("utf-8")) == original

    again = _vmcp(tmp_path, "client", "add", client)
    assert again.returncode == 1
    assert "--force" in again.stderr
    assert json.loads(path.read_text("utf-8")) == data
    forced = _vmcp(tmp_path, "client", "add", client, "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout) == {
        "client": client, "file": str(path), "name": "vmcp", "connect": False, "entry": entry,
        "backup": str(path.with_name(path.name + ".bak"))}

    listed = _vmcp(tmp_path, "client", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["client"]: row for row in json.loads(listed.stdout)}
    assert rows[client]["path"] == str(path)
    assert rows[client]["entries"] == {"vmcp": entry}
    assert all(not row["entries"] for name, row in rows.items() if name != client)

    removed = _vmcp(tmp_path, "client", "remove", client, "--json")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["file"] == str(path)
    assert json.loads(path.read_text("utf-8")) == original
    gone = _vmcp(tmp_path, "client", "remove", client)
    assert gone.returncode == 1
    assert "no server named 'vmcp'" in gone.stderr


def test_add_creates_a_missing_file_with_name_and_persona(tmp_path: Path) -> None:
    personas = tmp_path / "vmcp-home" / "config" / "personas"
    unknown = _vmcp(tmp_path, "client", "add", "cursor", "--persona", "coder")
    assert unknown.returncode == 1
    assert "coder" in unknown.stderr
    assert not (tmp_path / ".cursor").exists()
    created = _vmcp(tmp_path, "persona", "create", "coder")
    assert created.returncode == 0, created.stderr
    assert personas.is_dir()
    added = _vmcp(tmp_path, "client", "add", "cursor", "--persona", "coder", "--name", "gw")
    assert added.returncode == 0, added.stderr
    data = json.loads((tmp_path / ".cursor" / "mcp.json").read_text("utf-8"))
    assert data["mcpServers"]["gw"]["args"] == ["start", "--persona", "coder"]
    assert not (tmp_path / ".cursor" / "mcp.json.bak").exists()


def test_a_file_that_is_not_json_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / ".cursor" / "mcp.json"
    path.parent.mkdir()
    path.write_text("{ // comment\n}", "utf-8")
    done = _vmcp(tmp_path, "client", "add", "cursor")
    assert done.returncode == 1
    assert "not plain JSON" in done.stderr
    assert path.read_text("utf-8") == "{ // comment\n}"
    listed = _vmcp(tmp_path, "client", "list", "--json")
    assert listed.returncode == 0
    rows = {row["client"]: row for row in json.loads(listed.stdout)}
    assert "not plain JSON" in rows["cursor"]["error"]


@pytest.mark.anyio
async def test_claude_desktop_entry_starts_a_working_gateway(tmp_path: Path) -> None:
    """The entry works when started as Claude Desktop starts servers: small PATH, in ``/``."""
    assert _vmcp(tmp_path, "client", "add", "claude-desktop").returncode == 0
    config = json.loads((tmp_path / LINUX_PATHS["claude-desktop"]).read_text("utf-8"))
    entry = config["mcpServers"]["vmcp"]
    params = StdioServerParameters(command=entry["command"], args=entry["args"],
                                   env={"PATH": "/usr/bin:/bin", **entry["env"]}, cwd="/")
    with (tmp_path / "gateway.log").open("w") as errlog, anyio.fail_after(60):
        async with (stdio_client(params, errlog=errlog) as (read, write),
                    ClientSession(read, write) as session):
            await session.initialize()
            names = {tool.name for tool in (await session.list_tools()).tools}
    assert any(n.startswith("toolbox__") for n in names), names
    assert any(n.startswith("notes__") for n in names), names
