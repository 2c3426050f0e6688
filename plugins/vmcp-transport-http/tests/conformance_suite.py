"""The official MCP conformance suite (``@modelcontextprotocol/conformance``), installed with npm.

The suite needs Node >= 22. When the ``node`` on ``PATH`` is older, the npm package that ships a
Node 22 binary for this platform (``node-<os>-<arch>``) is installed next to the suite. Both go
in one cache folder (``.cache/conformance`` in this plugin, ignored by git; ``VMCP_CONFORMANCE_
CACHE`` moves it), installed again only when a pinned version changes.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SUITE = "@modelcontextprotocol/conformance"
SUITE_VERSION = "0.1.16"
NODE_VERSION = "22.23.3"
NODE_MAJOR = 22
#: seconds ``npm install`` may take (the Node binary is a download of some 30 MB)
INSTALL_TIMEOUT = 600
DEFAULT_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "conformance"

_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}
_OS = {"Linux": "linux", "Darwin": "darwin"}
#: the name of a scenario's results folder: ``server-<scenario>-<timestamp>``
_LISTED = re.compile(r"^  - (?P<name>\S+)", re.MULTILINE)
_RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


class SuiteUnavailable(RuntimeError):
    """The suite cannot be installed here (no npm, or no Node 22 for this platform)."""


def _node_major(node: str) -> int:
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    return int(out.strip().lstrip("v").split(".")[0])


def _node_package() -> str:
    system, machine = _OS.get(platform.system()), _ARCH.get(platform.machine().lower())
    if system is None or machine is None:
        raise SuiteUnavailable(f"no Node {NODE_MAJOR} package for {platform.platform()}")
    return f"node-{system}-{machine}"


def _installed_version(cache: Path, package: str) -> str | None:
    manifest = cache / "node_modules" / package / "package.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text(encoding="utf-8")).get("version")


@dataclass(frozen=True)
class Suite:
    """An installed suite and the Node that runs it."""

    node: Path
    script: Path

    def command(self, *args: str) -> list[str]:
        """The command line running the suite's CLI with ``args``."""
        return [str(self.node), str(self.script), *args]

    def server_scenarios(self) -> list[str]:
        """Every server scenario (what ``--suite all`` runs), from ``list --server``."""
        out = subprocess.run(self.command("list", "--server"), capture_output=True, text=True,
                             check=True).stdout
        return [m["name"] for m in _LISTED.finditer(out)]


def install(cache: Path | None = None) -> Suite:
    """Install the pinned suite (and Node 22 when needed) into ``cache``, unless already there.

    :raises SuiteUnavailable: when npm is missing or the platform has no Node 22 package.
    """
    cache = cache or Path(os.environ.get("VMCP_CONFORMANCE_CACHE") or DEFAULT_CACHE)
    system_node = shutil.which("node")
    wanted = {SUITE: SUITE_VERSION}
    if system_node is None or _node_major(system_node) < NODE_MAJOR:
        wanted[_node_package()] = NODE_VERSION
    missing = [f"{name}@{version}" for name, version in wanted.items()
               if _installed_version(cache, name) != version]
    if missing:
        npm = shutil.which("npm")
        if npm is None:
            raise SuiteUnavailable("npm is not installed")
        cache.mkdir(parents=True, exist_ok=True)
        (cache / ".gitignore").write_text("*\n", encoding="utf-8")
        subprocess.run(
            [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund",
             "--loglevel=error", *missing],
            check=True, timeout=INSTALL_TIMEOUT, stdout=subprocess.DEVNULL,
        )
    if len(wanted) > 1:
        node = cache / "node_modules" / _node_package() / "bin" / "node"
    else:
        assert system_node is not None
        node = Path(system_node)
    manifest = json.loads(
        (cache / "node_modules" / SUITE / "package.json").read_text(encoding="utf-8"))
    bin_field = manifest["bin"]
    script = bin_field if isinstance(bin_field, str) else bin_field["conformance"]
    return Suite(node, cache / "node_modules" / SUITE / script)


@dataclass(frozen=True)
class ScenarioResult:
    """The checks of one scenario, counted by status."""

    scenario: str
    counts: dict[str, int]

    @property
    def passed(self) -> bool:
        """No check failed or warned, and at least one succeeded."""
        return (self.counts.get("SUCCESS", 0) > 0 and not self.counts.get("FAILURE")
                and not self.counts.get("WARNING"))


def read_results(output_dir: Path) -> dict[str, ScenarioResult]:
    """The results the suite wrote with ``-o output_dir``, by scenario name."""
    results: dict[str, ScenarioResult] = {}
    for checks_file in sorted(output_dir.glob("*/checks.json")):
        match = _RESULT_DIR.match(checks_file.parent.name)
        assert match, f"unexpected results folder {checks_file.parent.name}"
        counts: dict[str, int] = {}
        for check in json.loads(checks_file.read_text(encoding="utf-8")):
            counts[check["status"]] = counts.get(check["status"], 0) + 1
        results[match["scenario"]] = ScenarioResult(match["scenario"], counts)
    return results


def failed_checks(output_dir: Path) -> list[str]:
    """One line per check that failed or warned: scenario, check id, message."""
    lines = []
    for checks_file in sorted(output_dir.glob("*/checks.json")):
        for check in json.loads(checks_file.read_text(encoding="utf-8")):
            if check["status"] in ("FAILURE", "WARNING"):
                lines.append(f"{checks_file.parent.name}: {check['id']} {check['status']}: "
                             f"{check.get('errorMessage') or check.get('description')}")
    return lines
