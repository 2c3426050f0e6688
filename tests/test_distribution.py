"""What a newcomer gets besides the code: wheels that install, the container recipe, the
generated configuration reference, the examples, the licence, and install instructions that
never point at the unrelated ``vmcp`` on PyPI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from vmcp.config import load_config
from vmcp.configdoc import render_reference

ROOT = Path(__file__).resolve().parents[1]
COMMAND_TIMEOUT = 300
HADOLINT = Path(sys.executable).parent / "hadolint"


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL, check=False)


def test_configuration_reference_is_the_generated_one() -> None:
    written = (ROOT / "docs" / "configuration.md").read_text("utf-8")
    assert written == render_reference(), (
        "docs/configuration.md is stale: uv run vmcp config reference > docs/configuration.md")
    for key in ("`startup_timeout`", "`isolation`", "`idempotent_tools`", "`half_open_probes`",
                "## `[servers.<id>.tools.<name>]`", "## `[repositories.<id>]`"):
        assert key in written


@pytest.mark.parametrize("name", ["servers.toml", "vmcp.toml"])
def test_examples_are_valid_configurations(tmp_path: Path, name: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "examples" / name, tmp_path / "config" / name)
    monkeypatch.setenv("VMCP_HOME", str(tmp_path))
    config, _ = load_config()
    if name == "servers.toml":
        assert {"time", "files", "git", "memory", "github"} <= set(config.servers)
        assert config.servers["github"].headers["Authorization"] == "Bearer ${GITHUB_TOKEN}"
    else:
        assert config.gateway.fronts == ["http"]
        assert set(config.servers) == {"toolbox", "notes"}  # the demo, until servers are added


def test_licence_and_changelog() -> None:
    licence = (ROOT / "LICENSE").read_text("utf-8")
    assert licence.startswith("MIT License")
    with (ROOT / "pyproject.toml").open("rb") as fh:
        assert tomllib.load(fh)["project"]["license"] == "MIT"
    assert (ROOT / "CHANGELOG.md").read_text("utf-8").startswith("# Changelog")


def test_no_page_says_to_install_vmcp_from_pypi() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    pypi_vmcp = re.compile(r"pip install\s+(['\"]?)vmcp(\[[a-z,]+\])?\1(\s|$)")
    for page in pages:
        for number, line in enumerate(page.read_text("utf-8").splitlines(), start=1):
            assert not pypi_vmcp.search(line), f"{page.name}:{number}: {line}"
            assert "uvx vmcp" not in line, f"{page.name}:{number}: {line}"


def test_dockerfile_passes_hadolint_and_runs_the_http_front() -> None:
    text = (ROOT / "Dockerfile").read_text("utf-8")
    assert 'CMD ["start", "-t", "http", "--port", "8000"]' in text
    assert "pip install --no-cache-dir /dist/*.whl" in text  # by file, never by name
    linted = _run([str(HADOLINT), "Dockerfile"], ROOT)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def _docker_engine() -> bool:
    """True when a Docker engine answers (a client alone cannot build)."""
    if shutil.which("docker") is None:
        return False
    return _run(["docker", "info"], ROOT).returncode == 0


@pytest.mark.skipif(not _docker_engine(), reason="no Docker engine here")
def test_the_image_builds() -> None:
    built = _run(["docker", "build", "-t", "vmcp-test", "."], ROOT)
    assert built.returncode == 0, built.stderr


def test_all_packages_build_wheels_that_install_together(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "VMCP_CONFIG")}
    env["VMCP_HOME"] = str(tmp_path / "home")
    dist = tmp_path / "dist"
    built = _run([uv, "build", "--all-packages", "--wheel", "--out-dir", str(dist)], ROOT, env)
    assert built.returncode == 0, built.stderr
    wheels = sorted(p.name for p in dist.glob("*.whl"))
    members = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml")
                     .exists())
    assert len(wheels) == len(members) + 1, wheels
    [core] = [w for w in wheels if w.startswith("vmcp-")]
    venv = tmp_path / "venv"
    assert _run([uv, "venv", str(venv), "--python", sys.executable], tmp_path, env) \
        .returncode == 0
    python = str(venv / "bin" / "python")
    plugins = ["vmcp-transport-http", "vmcp-transport-ws", "vmcp-repo-pypi"]
    # the plugins extra, resolved from the built wheels (by file, never vmcp from PyPI); the
    # third-party dependencies at their locked versions, from uv's cache where it has them
    # and from the registry where it does not (uv sync reads the lock's URLs, so a fresh
    # cache holds none of the index pages an offline resolution would need)
    locked = tmp_path / "locked.txt"
    exported = _run([uv, "export", "--frozen", "--all-packages", "--no-emit-workspace",
                     "--no-hashes", "--no-header", "--output-file", str(locked)], ROOT, env)
    assert exported.returncode == 0, exported.stderr
    installed = _run([uv, "pip", "install", "--python", python, "--constraint", str(locked),
                      "--find-links", str(dist), f"vmcp[plugins] @ {(dist / core).as_uri()}"],
                     tmp_path, env)
    assert installed.returncode == 0, installed.stderr
    version = _run([str(venv / "bin" / "vmcp"), "--version"], tmp_path, env)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"vmcp, version {core.split('-')[1]}"
    listed = _run([str(venv / "bin" / "vmcp"), "plugins", "list", "--json"], tmp_path, env)
    assert listed.returncode == 0, listed.stderr
    names = {record["name"] for record in json.loads(listed.stdout)}
    assert {"vmcp", *plugins} <= names
