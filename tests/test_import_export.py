"""``vmcp import`` from each client's real-shaped configuration, and ``vmcp export`` back.

The imported mounts are then served by a real gateway, and the exported entry is started
the way Claude Desktop starts servers (small PATH, in ``/``, only the entry's env).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from vmcp.mcpjson import convert_entry, plan_import

ALPHA = Path(__file__).resolve().parent / "fixtures" / "servers" / "alpha.py"


def _vmcp(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "VMCP_HOME": str(home / "vmcp-home"), **extra}
    env.pop("VMCP_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "vmcp", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False, stdin=subprocess.DEVNULL)


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), "utf-8")
    return path


def _mounts(home: Path) -> dict[str, Any]:
    text = (home / "vmcp-home" / "config" / "servers.toml").read_text("utf-8")
    return tomllib.loads(text)["servers"]


def test_claude_desktop_servers_become_mounts_that_a_gateway_serves(tmp_path: Path) -> None:
    _write(tmp_path / ".config" / "Claude" / "claude_desktop_config.json", {
        "globalShortcut": "Ctrl+Space",
        "mcpServers": {
            "Alpha Server": {"command": sys.executable, "args": [str(ALPHA)],
                             "env": {"ALPHA_MODE": "test", "GITHUB_TOKEN": "ghp_x"}},
            "vmcp": {"command": "/opt/vmcp/.venv/bin/vmcp", "args": ["start"]},
        }})
    dry = _vmcp(tmp_path, "import", "claude-desktop", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would import alpha-server (from 'Alpha Server')" in dry.stdout
    assert "skipped vmcp: runs vmcp itself" in dry.stdout
    assert not (tmp_path / "vmcp-home" / "config" / "servers.toml").exists()

    done = _vmcp(tmp_path, "import", "claude-desktop")
    assert done.returncode == 0, done.stderr
    mount = _mounts(tmp_path)["alpha-server"]
    assert mount == {"command": sys.executable, "args": [str(ALPHA)],
                     "env": {"ALPHA_MODE": "test", "GITHUB_TOKEN": "${GITHUB_TOKEN}"}}
    assert "GITHUB_TOKEN is a secret, stored as ${GITHUB_TOKEN}" in done.stdout
    assert "ghp_x" not in (tmp_path / "vmcp-home" / "config" / "servers.toml").read_text()

    tools = _vmcp(tmp_path, "tools", "--json")
    assert tools.returncode == 0, tools.stderr
    assert "alpha-server__echo" in {t["name"] for t in json.loads(tools.stdout)}

    again = _vmcp(tmp_path, "import", "claude-desktop", "--json")
    assert again.returncode == 0, again.stderr
    [source] = json.loads(again.stdout)["sources"]
    assert source["mounts"] == {}
    assert source["skipped"]["Alpha Server"] == "already configured as 'alpha-server', the same"


def test_each_clients_shape_is_understood(tmp_path: Path) -> None:
    _write(tmp_path / ".cursor" / "mcp.json", {"mcpServers": {
        "docs": {"url": "https://docs.example/mcp",
                 "headers": {"Authorization": "Bearer abc", "X-Team": "core"}},
        "events": {"url": "https://events.example/sse"},
        "fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem",
                                           "${env:HOME}/work"], "envFile": ".env"},
    }})
    _write(tmp_path / ".config" / "Code" / "User" / "mcp.json", {
        "inputs": [{"type": "promptString", "id": "perplexity-key", "password": True}],
        "servers": {
            "perplexity": {"type": "stdio", "command": "npx", "args": ["-y", "server-perplexity"],
                           "env": {"PERPLEXITY_API_KEY": "${input:perplexity-key}"}},
            "gh": {"type": "http", "url": "https://api.example/mcp/"},
        }})
    _write(tmp_path / ".claude.json", {
        "numStartups": 3, "projects": {"/x": {"mcpServers": {}}},
        "mcpServers": {"git": {"type": "stdio", "command": "uvx", "args": ["mcp-server-git"],
                               "cwd": "/srv/repo", "env": {}},
                       "remote": {"type": "sse", "url": "https://r.example/events"}}})
    _write(tmp_path / ".codeium" / "windsurf" / "mcp_config.json", {"mcpServers": {
        "wind": {"serverUrl": "https://w.example/mcp", "disabled": True},
        "docs": {"url": "https://other.example/mcp"},
        "odd": {"type": "carrier-pigeon", "url": "https://p.example"},
    }})
    done = _vmcp(tmp_path, "import", "--json")
    assert done.returncode == 0, done.stderr
    report = {item["source"]: item for item in json.loads(done.stdout)["sources"]}
    assert set(report) == {"cursor", "vscode", "claude-code", "windsurf"}
    mounts = _mounts(tmp_path)
    assert mounts["docs"] == {"transport": "http", "url": "https://docs.example/mcp",
                              "headers": {"Authorization": "Bearer ${DOCS_AUTHORIZATION}",
                                          "X-Team": "core"}}
    assert mounts["events"] == {"transport": "sse", "url": "https://events.example/sse"}
    assert mounts["fs"]["args"][-1] == "${HOME}/work"
    assert any("envFile" in note for note in report["cursor"]["notes"])
    assert mounts["perplexity"]["env"] == {"PERPLEXITY_API_KEY": "${PERPLEXITY_KEY}"}
    assert mounts["gh"] == {"transport": "http", "url": "https://api.example/mcp/"}
    assert mounts["git"] == {"command": "uvx", "args": ["mcp-server-git"], "cwd": "/srv/repo"}
    assert mounts["remote"]["transport"] == "sse"
    assert mounts["wind"] == {"transport": "http", "url": "https://w.example/mcp",
                              "enabled": False}
    skipped = report["windsurf"]["skipped"]
    assert "a different mount 'docs' is already configured" in skipped["docs"]
    assert skipped["odd"] == "unknown type 'carrier-pigeon'"


def test_a_file_and_replace(tmp_path: Path) -> None:
    project = _write(tmp_path / "project" / ".mcp.json", {"mcpServers": {
        "time": {"command": "uvx", "args": ["mcp-server-time"]}}})
    assert _vmcp(tmp_path, "import", str(project)).returncode == 0
    _write(project, {"mcpServers": {"time": {"command": "uvx",
                                              "args": ["mcp-server-time", "--local-timezone",
                                                       "UTC"]}}})
    clash = _vmcp(tmp_path, "import", str(project))
    assert "skipped time: a different mount 'time' is already configured" in clash.stdout
    assert _mounts(tmp_path)["time"]["args"] == ["mcp-server-time"]
    assert _vmcp(tmp_path, "import", str(project), "--replace").returncode == 0
    assert _mounts(tmp_path)["time"]["args"][-1] == "UTC"
    missing = _vmcp(tmp_path, "import", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "neither a known client" in missing.stderr
    broken = _write(tmp_path / "broken.json", {"mcpServers": []})
    bad = _vmcp(tmp_path, "import", str(broken))
    assert bad.returncode == 1 and "'mcpServers' is not a JSON object" in bad.stdout


def test_keep_secrets_and_collisions_within_one_file() -> None:
    plan = plan_import({"My Git": {"command": "g"}, "my-git": {"command": "h"},
                        "api": {"command": "a", "env": {"API_KEY": "k"}}}, keep_secrets=True)
    assert plan.mounts["my-git"] == {"command": "g"}
    assert "taken by another entry" in plan.skipped["my-git"]
    assert plan.mounts["api"]["env"] == {"API_KEY": "k"}
    assert convert_entry("x", {"command": "c", "env": {"TOKEN": "${env:T}"}}, "x") == {
        "command": "c", "env": {"TOKEN": "${T}"}}


@pytest.mark.anyio
async def test_exported_entry_runs_as_claude_desktop_starts_it(tmp_path: Path) -> None:
    config = tmp_path / "vmcp-home" / "config"
    config.mkdir(parents=True)
    (config / "servers.toml").write_text(
        f'[servers.alpha]\ncommand = "${{VMCP_PYTHON}}"\nargs = [{json.dumps(str(ALPHA))}]\n'
        '[servers.off]\ncommand = "x"\nenabled = false\n'
        '[servers.sock]\ntransport = "ws"\nurl = "ws://127.0.0.1:1/"\n', "utf-8")
    done = _vmcp(tmp_path, "export")
    assert done.returncode == 0, done.stderr
    assert "sock left out" in done.stderr
    servers = json.loads(done.stdout)["mcpServers"]
    assert set(servers) == {"alpha"}
    entry = servers["alpha"]
    assert entry["command"] == sys.executable
    params = StdioServerParameters(command=entry["command"], args=entry["args"],
                                   env={"PATH": "/usr/bin:/bin", **entry.get("env", {})},
                                   cwd="/")
    with (tmp_path / "server.log").open("w") as errlog, anyio.fail_after(60):
        async with (stdio_client(params, errlog=errlog) as (read, write),
                    ClientSession(read, write) as session):
            await session.initialize()
            names = {tool.name for tool in (await session.list_tools()).tools}
    assert "echo" in names
    vscode = json.loads(_vmcp(tmp_path, "export", "--format", "vscode").stdout)
    assert vscode["servers"]["alpha"]["type"] == "stdio"
