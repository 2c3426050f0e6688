"""Plugins found through real entry-point metadata, as an installed distribution is found.

Most tests write ``*.dist-info`` folders (METADATA and entry_points.txt) next to the plugin
modules in a temporary folder and run ``python -m vmcp`` with that folder on PYTHONPATH.
One test builds a real wheel with ``uv build`` and installs it with vmcp into a fresh venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

GOOD_MODULE = '''
import click

from vmcp import hookimpl


class GoodCache:
    """A driver class; the kernel only has to find it."""


@hookimpl
def vmcp_register_commands(cli):
    @cli.command("hello-good")
    def hello_good():
        """Say hello from the good plugin."""
        click.echo("hello from the good plugin")
'''

BROKEN_MODULE = 'raise RuntimeError("broken on purpose")\n'

TYPO_MODULE = """
from vmcp import hookimpl


@hookimpl
def vmcp_regster_commands(cli):
    pass
"""

CLASH_MODULE = """
import click

from vmcp import hookimpl


@hookimpl
def vmcp_register_commands(cli):
    @cli.command("config")
    def config():
        click.echo("hijacked")
"""

GOOD_ENTRY_POINTS = {
    "vmcp": {"goodplug": "vmcp_goodplug"},
    "vmcp.caches": {"good": "vmcp_goodplug:GoodCache"},
}
BROKEN_ENTRY_POINTS = {
    "vmcp": {"brokenplug": "vmcp_brokenplug"},
    "vmcp.caches": {"broken": "vmcp_brokenplug:Cache"},
}


def write_distribution(
    site: Path, name: str, module: str, source: str, entry_points: dict[str, dict[str, str]]
) -> None:
    """Write an importable module and the dist-info metadata that declares its entry points."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{name.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    lines = []
    for group, items in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{ep} = {target}" for ep, target in items.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder holding one good and one broken plugin distribution."""
    folder = tmp_path / "site"
    folder.mkdir()
    write_distribution(folder, "vmcp-goodplug", "vmcp_goodplug", GOOD_MODULE, GOOD_ENTRY_POINTS)
    write_distribution(
        folder, "vmcp-brokenplug", "vmcp_brokenplug", BROKEN_MODULE, BROKEN_ENTRY_POINTS
    )
    return folder


def run(
    python: str | Path, args: list[str], tmp_path: Path, site: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m vmcp ARGS``."""
    return _isolated([str(python), "-m", "vmcp", *args], tmp_path, site, env)


def run_script(script: str, tmp_path: Path, site: Path) -> list[str]:
    """Run a Python snippet with ``site`` on the path; return its output lines."""
    result = _isolated([sys.executable, "-c", textwrap.dedent(script)], tmp_path, site, {})
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def _isolated(
    argv: list[str], tmp_path: Path, site: Path | None, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` isolated from the user's home and entry-point cache."""
    environ = {k: v for k, v in os.environ.items() if k != "VMCP_DISABLE_PLUGINS"}
    environ.update(VMCP_HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    environ.update(env)
    if site is not None:
        environ["PYTHONPATH"] = str(site)
    return subprocess.run(
        argv, capture_output=True, text=True, env=environ, timeout=60, check=False
    )


def records(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    """The ``plugins list --json`` output, keyed by distribution name."""
    assert result.returncode == 0, result.stderr
    return {r["name"]: r for r in json.loads(result.stdout)}


def test_builtins_are_listed_under_vmcp(tmp_path: Path) -> None:
    listed = records(run(sys.executable, ["plugins", "list", "--json"], tmp_path))
    vmcp = listed["vmcp"]
    assert {"vmcp.caches:memory", "vmcp.balancers:round_robin"} <= set(vmcp["drivers"])
    assert vmcp["version"]


def test_good_plugin_loads_and_broken_one_is_reported(tmp_path: Path, site: Path) -> None:
    result = run(sys.executable, ["plugins", "list", "--json"], tmp_path, site)
    listed = records(result)

    good = listed["vmcp-goodplug"]
    assert good["version"] == "1.2.3"
    assert good["drivers"] == ["vmcp.caches:good"]
    assert good["hooks"] == ["vmcp_register_commands"]
    assert good["status"] == "ok"

    broken = listed["vmcp-brokenplug"]
    assert broken["drivers"] == ["vmcp.caches:broken"]
    assert broken["hooks"] == []
    assert broken["status"].startswith("failed: ")
    assert "RuntimeError: broken on purpose (vmcp:brokenplug)" in broken["status"]
    assert "RuntimeError: broken on purpose (vmcp.caches:broken)" in broken["status"]

    assert "memory" in " ".join(listed["vmcp"]["drivers"])
    assert "plugin vmcp-brokenplug (vmcp:brokenplug) failed: RuntimeError" in result.stderr


def test_table_has_one_aligned_row_per_distribution(tmp_path: Path, site: Path) -> None:
    result = run(sys.executable, ["plugins", "list"], tmp_path, site)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "DRIVERS", "HOOKS", "STATUS"]
    good = next(line for line in lines if line.startswith("vmcp-goodplug "))
    assert "vmcp.caches:good" in good and "vmcp_register_commands" in good
    assert good.endswith("ok")
    broken = next(line for line in lines if line.startswith("vmcp-brokenplug "))
    assert "failed: RuntimeError: broken on purpose" in broken
    status_column = lines[0].index("STATUS")
    assert good.index("ok", len(good) - 2) == status_column


def test_plugin_command_appears_and_runs(tmp_path: Path, site: Path) -> None:
    helped = run(sys.executable, ["--help"], tmp_path, site)
    assert helped.returncode == 0, helped.stderr
    assert "hello-good" in helped.stdout
    assert "plugins" in helped.stdout and "config" in helped.stdout

    hello = run(sys.executable, ["hello-good"], tmp_path, site)
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout.strip() == "hello from the good plugin"


def test_disabled_plugin_does_not_load(tmp_path: Path, site: Path) -> None:
    env = {"VMCP_DISABLE_PLUGINS": "goodplug, brokenplug"}
    helped = run(sys.executable, ["--help"], tmp_path, site, **env)
    assert "hello-good" not in helped.stdout
    assert "brokenplug" not in helped.stderr
    listed = records(run(sys.executable, ["plugins", "list", "--json"], tmp_path, site, **env))
    assert listed["vmcp-goodplug"]["hooks"] == []
    assert listed["vmcp-goodplug"]["status"] == "ok"  # its driver still works


def test_load_driver_finds_plugin_driver_and_names_a_broken_one(tmp_path: Path, site: Path) -> None:
    script = """
        from vmcp.plugins import PluginError, load_driver
        print(load_driver("caches", "good").__name__)
        try:
            load_driver("caches", "broken")
        except PluginError as exc:
            print(exc)
        """
    good, broken = run_script(script, tmp_path, site)
    assert good == "GoodCache"
    assert broken == (
        "driver vmcp.caches:broken from vmcp-brokenplug failed to load: "
        "RuntimeError: broken on purpose"
    )


def test_plugin_mistakes_are_reported(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    write_distribution(
        folder, "vmcp-typo", "vmcp_typo", TYPO_MODULE, {"vmcp": {"typo": "vmcp_typo"}}
    )
    write_distribution(
        folder, "vmcp-clash", "vmcp_clash", CLASH_MODULE, {"vmcp": {"clash": "vmcp_clash"}}
    )
    write_distribution(
        folder, "vmcp-singular", "vmcp_singular", "class X: pass\n", {"vmcp.cache": {"x": "m:X"}}
    )
    listed = records(run(sys.executable, ["plugins", "list", "--json"], tmp_path, folder))
    assert listed["vmcp-singular"]["status"] == (
        "failed: unknown entry-point group 'vmcp.cache' (vmcp.cache:x)"
    )
    assert listed["vmcp-typo"]["status"] == (
        "failed: PluginError: unknown hook vmcp_regster_commands (vmcp:typo)"
    )
    assert listed["vmcp-clash"]["status"] == (
        "failed: command 'config' is already taken (vmcp:clash)"
    )
    kept = run(sys.executable, ["config", "path"], tmp_path, folder)
    assert kept.returncode == 0, kept.stderr
    assert "hijacked" not in kept.stdout

    env = {"VMCP_DISABLE_PLUGINS": "typo"}
    listed = records(run(sys.executable, ["plugins", "list", "--json"], tmp_path, folder, **env))
    assert listed["vmcp-typo"]["status"] == "disabled"


LAZY_MODULE = """
from vmcp import hookimpl


@hookimpl
def vmcp_register_commands(cli):
    cli.add_lazy_command("hello-lazy", "vmcp_lazy_command:hello_lazy")
    cli.add_lazy_command("config", "vmcp_lazy_command:hello_lazy")
"""

LAZY_COMMAND = """
import sys

import click

print("vmcp_lazy_command imported", file=sys.stderr)


@click.command("hello-lazy")
def hello_lazy():
    \"\"\"Say hello from a command imported on first use.\"\"\"
    click.echo("hello, lazily")
"""


def test_a_lazy_plugin_command_is_imported_only_when_used(tmp_path: Path) -> None:
    """``add_lazy_command``: listed by ``--help``, imported by its own run only (never by
    another command); a name already taken is refused like an eager one."""
    folder = tmp_path / "site"
    folder.mkdir()
    write_distribution(folder, "vmcp-lazy", "vmcp_lazy", LAZY_MODULE,
                       {"vmcp": {"lazy": "vmcp_lazy"}})
    (folder / "vmcp_lazy_command.py").write_text(textwrap.dedent(LAZY_COMMAND))
    other = run(sys.executable, ["config", "path"], tmp_path, folder)
    assert other.returncode == 0, other.stderr
    assert "vmcp_lazy_command imported" not in other.stderr
    assert "hello" not in other.stdout  # the built-in config kept its name
    assert "vmcp-lazy (vmcp:lazy) failed: command 'config' is already taken" in other.stderr
    helped = run(sys.executable, ["--help"], tmp_path, folder)
    assert "hello-lazy" in helped.stdout
    hello = run(sys.executable, ["hello-lazy"], tmp_path, folder)
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout.strip() == "hello, lazily"
    assert "vmcp_lazy_command imported" in hello.stderr


def test_a_driver_name_provided_twice_is_an_error(tmp_path: Path, site: Path) -> None:
    write_distribution(
        site,
        "vmcp-twin",
        "vmcp_twin",
        "class Cache: pass\n",
        {"vmcp.caches": {"good": "vmcp_twin:Cache"}},
    )
    script = """
        from vmcp.plugins import PluginError, load_driver
        try:
            load_driver("caches", "good")
        except PluginError as exc:
            print(exc)
        """
    assert run_script(script, tmp_path, site) == [
        "driver vmcp.caches:good is provided more than once: vmcp-goodplug, vmcp-twin"
    ]


def test_real_wheel_installed_next_to_vmcp(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv, "uv must be on PATH (see .ci/run)"
    project = tmp_path / "vmcp-goodplug"
    package = project / "src" / "vmcp_goodplug"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(GOOD_MODULE))
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [project]
            name = "vmcp-goodplug"
            version = "1.2.3"

            [project.entry-points.vmcp]
            goodplug = "vmcp_goodplug"

            [project.entry-points."vmcp.caches"]
            good = "vmcp_goodplug:GoodCache"

            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"
            """
        )
    )
    wheels = tmp_path / "wheels"
    for source in (project, REPO_ROOT):
        subprocess.run(
            [uv, "build", "--quiet", "--wheel", "--out-dir", str(wheels), str(source)],
            check=True,
            timeout=120,
        )
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), *map(str, wheels.glob("*.whl"))],
        check=True,
        timeout=120,
    )

    listed = records(run(python, ["plugins", "list", "--json"], tmp_path))
    assert listed["vmcp-goodplug"] == {
        "name": "vmcp-goodplug",
        "version": "1.2.3",
        "drivers": ["vmcp.caches:good"],
        "hooks": ["vmcp_register_commands"],
        "status": "ok",
    }
    assert {"vmcp.caches:memory", "vmcp.balancers:round_robin"} <= set(listed["vmcp"]["drivers"])
    helped = run(python, ["--help"], tmp_path)
    assert "hello-good" in helped.stdout
