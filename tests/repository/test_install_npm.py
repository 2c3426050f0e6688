"""Installing an npm package from a real local registry into its own prefix, then calling it."""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from npm_registry import PACKAGE, pack, serve_registry
from repo_helpers import git, run_cli

pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")


def folder_source(root: Path, registry: str, digest: str) -> Path:
    """A git repository with the package in the folder layout, good and with a bad hash."""
    repo = root / "servers"
    for version, sha in (("1.0.0", digest), ("1.0.1", "2" * 64)):
        folder = repo / f"hello-{version}"
        folder.mkdir(parents=True)
        (folder / "install.json").write_text(json.dumps({
            "name": "example/hello", "version": version, "install": [{
                "method": "npm", "package": PACKAGE, "version": "1.0.0", "index": registry,
                "sha256": sha, "env": {"HELLO_NAME": {"default": "vmcp"}}}]}))
        (folder / "MANIFEST.md").write_text("# Hello\n\nSays hello from Node.\n")
    git(root, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "hello")
    return repo


async def _hello(entry: dict) -> str:
    params = StdioServerParameters(command=entry["command"], args=entry.get("args", []),
                                    env=entry["env"])
    with anyio.fail_after(30):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            assert [t.name for t in (await session.list_tools()).tools] == ["hello"]
            return (await session.call_tool("hello", {})).content[0].text


def test_npm_package_with_checked_tarball(home: Path, tmp_path: Path) -> None:
    tarball = pack(tmp_path)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    with serve_registry(tarball) as registry:
        run_cli("repo", "add", str(folder_source(tmp_path, registry, digest)), "--name", "local")
        run_cli("repo", "sync")
        bad = run_cli("install", "hello@1.0.1", "--yes", ok=False)
        assert "sha256 mismatch" in bad.output
        assert not (home / "installed" / "servers" / "example%2Fhello").exists()

        out = run_cli("install", "hello@1.0.0", "--yes").output
    assert "npm pack" in out and f"check sha256 of the tarball = {digest}" in out
    entry = tomllib.loads((home / "config" / "servers.toml").read_text())["servers"]["hello"]
    prefix = home / "installed" / "servers" / "example%2Fhello" / "1.0.0" / "node"
    assert entry["command"] == str(prefix / "node_modules" / ".bin" / PACKAGE)
    assert entry["env"] == {"HELLO_NAME": "vmcp"}
    assert anyio.run(_hello, entry) == "hello from node vmcp"
