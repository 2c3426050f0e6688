"""`vmcp repo add/list/sync/remove` with real sources: one fails, bad manifests are skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repo_helpers import git, run_cli, server_json

from vmcp.cli import output
from vmcp.testing import serve_folder


def make_git_source(root: Path) -> Path:
    """A repository with two good manifests and two bad ones."""
    repo = root / "manifests"
    (repo / "good" / "one").mkdir(parents=True)
    (repo / "good" / "one" / "server.json").write_text(server_json("example/one", "First"))
    (repo / "good" / "two").mkdir()
    (repo / "good" / "two" / "install.json").write_text(json.dumps(
        {"version": "2.0.0", "install": [{"method": "remote", "url": "https://two.example/mcp"}]}))
    (repo / "good" / "two" / "MANIFEST.md").write_text("# Two\n\nThe second server.\n")
    (repo / "bad" / "json").mkdir(parents=True)
    (repo / "bad" / "json" / "server.json").write_text("{ nope")
    (repo / "bad" / "fields").mkdir()
    (repo / "bad" / "fields" / "server.json").write_text('{"name": "example/x"}')
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "servers")
    return repo


def test_sync_reports_bad_manifests_and_a_failing_source_while_the_rest_sync(
    home: Path, tmp_path: Path
) -> None:
    repo = make_git_source(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.json").write_text(json.dumps(
        [json.loads(server_json("example/three", "Third"))]))
    with serve_folder(site) as url:
        assert "(git)" in run_cli("repo", "add", str(repo)).output
        assert "added source 'team' (http)" in run_cli(
            "repo", "add", f"{url}/index.json", "--name", "team").output
        run_cli("repo", "add", f"{url}/missing.json", "--name", "gone")

        result = run_cli("repo", "sync", ok=False)
        assert result.exit_code == 1
        out = result.output
        assert "ok   manifests: 2 manifests, 2 skipped" in out
        assert "skipped manifests: bad/json/server.json: not valid JSON" in out
        assert "skipped manifests: bad/fields/server.json: description: field required" in out
        assert "ok   team: 1 manifests" in out
        assert "FAIL gone:" in out and "HTTP 404" in out
        assert "synced 2 of 3 sources" in out
        assert {h["name"] for h in json.loads(run_cli("search", "server", "third",
                                                      "--json").output)} >= {"example/three"}

        # a source that fails later keeps what it had
        (site / "index.json").unlink()
        assert run_cli("repo", "sync", "team", ok=False).exit_code == 1
        assert json.loads(run_cli("search", "third", "--json").output)[0]["source"] == "team"
        listing = json.loads(run_cli("repo", "list", "--json").output)
        team = next(row for row in listing if row["name"] == "team")
        assert team["manifests"] == 1 and "HTTP 404" in team["error"]

    stored = (home / "config" / "repositories.toml").read_text()
    assert 'type = "git"' in stored and "[repositories.team]" in stored
    run_cli("repo", "remove", "team")
    assert json.loads(run_cli("search", "third", "--json").output) == []
    assert [r["name"] for r in json.loads(run_cli("repo", "list", "--json").output)] == [
        "manifests", "gone"]


def test_add_refuses_bad_settings_names_and_missing_drivers(home: Path, tmp_path: Path) -> None:
    bad = run_cli("repo", "add", "https://r.example", "--type", "http", "-o", "colour=red",
                  ok=False)
    assert bad.exit_code == 1 and "colour: unknown setting" in bad.output
    nodriver = run_cli("repo", "add", "https://r.example", "--type", "svn", ok=False)
    assert "no driver 'svn' in vmcp.repositories" in nodriver.output
    run_cli("repo", "add", "https://r.example/index.json", "--name", "dup")
    again = run_cli("repo", "add", "https://r.example/other.json", "--name", "dup", ok=False)
    assert "exists already" in again.output
    missing = run_cli("repo", "remove", "nope", ok=False)
    assert missing.exit_code == 1 and "no source 'nope'" in missing.output


def test_a_source_whose_driver_is_gone_is_reported_at_sync(home: Path) -> None:
    config = home / "config"
    config.mkdir()
    (config / "repositories.toml").write_text(
        '[repositories.old]\nurl = "svn://x"\ntype = "svn"\n')
    result = run_cli("repo", "sync", ok=False)
    assert "FAIL old: no driver 'svn'" in result.output


def test_repo_list_has_headers_on_a_terminal(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_cli("repo", "add", "https://r.example/index.json", "--name", "team", "--type", "http")
    piped = run_cli("repo", "list").output.splitlines()
    assert piped[0].split()[:3] == ["team", "http", "0"]
    monkeypatch.setattr(output, "_on_terminal", lambda: True)
    shown = run_cli("repo", "list").output.splitlines()
    assert shown[0].split() == ["NAME", "TYPE", "MANIFESTS", "SYNCED", "URL"]
    assert shown[1].split()[:4] == ["team", "http", "0", "never"]
