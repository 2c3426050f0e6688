"""The git source against real local repositories: clone, pull, pin to a tag or a branch."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from vmcp_repo_git.source import GitSource

from vmcp.plugins import load_driver
from vmcp.repository.base import SourceError

pytestmark = pytest.mark.anyio


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.org", *args],
        cwd=repo, check=True, capture_output=True,
    )


def add_server(repo: Path, folder: str, name: str, version: str = "1.0.0") -> None:
    path = repo / folder / "server.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "name": name, "description": f"{name} server", "version": version,
        "remotes": [{"type": "streamable-http", "url": "https://x.example/mcp"}],
    }))


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """A repository with one server.json, one install.json folder and tag v1."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    add_server(repo, "servers/alpha", "example/alpha")
    folder = repo / "servers" / "beta"
    folder.mkdir(parents=True)
    (folder / "install.json").write_text(json.dumps({
        "version": "0.1.0", "install": [{"method": "pypi", "package": "beta-mcp"}]}))
    (folder / "MANIFEST.md").write_text("# Beta\n\nThe beta server.\n")
    (repo / ".hidden").mkdir()
    (repo / ".hidden" / "server.json").write_text("{}")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first servers")
    git(repo, "tag", "v1")
    return repo


def names(raws: list) -> list[str]:
    return sorted(json.loads(r.text).get("name", r.location) for r in raws)


async def test_clone_finds_both_layouts_and_skips_hidden_folders(
    upstream: Path, tmp_path: Path
) -> None:
    raws = await GitSource("s", str(upstream)).fetch(tmp_path / "work")
    kinds = sorted((r.location, r.kind) for r in raws)
    assert kinds == [("servers/alpha/server.json", "server.json"),
                     ("servers/beta/install.json", "install.json")]
    beta = next(r for r in raws if r.kind == "install.json")
    assert beta.readme.startswith("# Beta")


async def test_pull_brings_new_server_on_branch_but_tag_stays_put(
    upstream: Path, tmp_path: Path
) -> None:
    on_branch = GitSource("b", str(upstream), ref="main")
    on_tag = GitSource("t", str(upstream), ref="v1")
    assert len(await on_branch.fetch(tmp_path / "b")) == 2
    assert len(await on_tag.fetch(tmp_path / "t")) == 2

    add_server(upstream, "servers/gamma", "example/gamma")
    git(upstream, "add", "-A")
    git(upstream, "commit", "-qm", "gamma")

    assert "example/gamma" in names(await on_branch.fetch(tmp_path / "b"))
    assert "example/gamma" not in names(await on_tag.fetch(tmp_path / "t"))
    # the clone was reused, not made again
    assert (tmp_path / "b" / "checkout" / ".git").is_dir()


async def test_default_branch_and_subdir(upstream: Path, tmp_path: Path) -> None:
    raws = await GitSource("s", str(upstream), subdir="servers/alpha").fetch(tmp_path / "w")
    assert [r.location for r in raws] == ["server.json"]


async def test_unknown_ref_and_unreachable_repository_are_clear_errors(
    upstream: Path, tmp_path: Path
) -> None:
    with pytest.raises(SourceError, match="no branch or tag 'v9'"):
        await GitSource("s", str(upstream), ref="v9").fetch(tmp_path / "a")
    with pytest.raises(SourceError, match="git clone failed"):
        await GitSource("s", str(tmp_path / "missing")).fetch(tmp_path / "b")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown setting"):
        GitSource("s", "/x", colour="blue")
    with pytest.raises(ValueError, match="subdir"):
        GitSource("s", "/x", subdir="../out")


def test_registered_as_the_git_driver() -> None:
    assert load_driver("repositories", "git") is GitSource
