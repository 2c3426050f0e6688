"""Without uv on the PATH, PyPI packages are installed with venv + pip, hash checked."""

from __future__ import annotations

import tomllib
from pathlib import Path

import anyio
import pytest
from echo_package import PLAIN_MODULE, build_wheel, sha256, write_index
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from repo_helpers import run_cli

from vmcp.testing import serve_folder

PROJECT = "vmcp-test-plain"


async def _ping(entry: dict) -> str:
    params = StdioServerParameters(command=entry["command"], args=entry.get("args", []))
    with anyio.fail_after(30):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return (await session.call_tool("ping", {})).content[0].text


def test_pip_installs_when_uv_is_missing(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = build_wheel(tmp_path, "0.1.0", tmp_path / "dist", PROJECT, PLAIN_MODULE)
    write_index(tmp_path / "index", {"0.1.0": wheel}, {"0.1.0": sha256(wheel)}, PROJECT,
                "io.example/plain")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with serve_folder(tmp_path / "index") as url:
        run_cli("repo", "add", url, "--name", "local", "--type", "pypi")
        run_cli("repo", "sync")
        out = run_cli("install", "plain", "--yes").output
    assert " -m venv " in out and "pip install --quiet" in out and "--no-deps" in out
    entry = tomllib.loads((home / "config" / "servers.toml").read_text())["servers"]["plain"]
    assert entry["command"].endswith("/0.1.0/venv/bin/vmcp-test-plain")
    assert anyio.run(_ping, entry) == "pong 0.1.0"
