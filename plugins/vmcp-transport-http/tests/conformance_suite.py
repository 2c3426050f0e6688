"""The official MCP conformance suite (``@modelcontextprotocol/conformance``), installed with npm.

The suite needs Node >= 22. When the ``node`` on ``PATH`` is older, the npm package that ships a
Node 22 binary for this platform (``node-<os>-<arch>``) is installed next to the suite, and so
are ``tsx`` and ``cors``, which the suite's reference server (``conformance_reference/``) needs
on top of what the suite brings. All of it goes in one cache folder (``.cache/conformance`` in
this plugin, ignored by git; ``VMCP_CONFORMANCE_CACHE`` moves it), installed again only when a
pinned version changes.

The suite runs each scenario at one protocol version, and a scenario that exists in both eras
must be run once in each (``--spec-version``): :data:`ERAS` names the two runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SUITE = "@modelcontextprotocol/conformance"
SUITE_VERSION = "0.2.0-alpha.12"
NODE_VERSION = "22.23.3"
NODE_MAJOR = 22
TSX_VERSION = "4.21.0"
CORS_VERSION = "2.8.6"
#: the protocol versions the suite is run at: the newest handshake one, and the stateless one
LEGACY, MODERN = "2025-11-25", "2026-07-28"
ERAS = (LEGACY, MODERN)
#: seconds ``npm install`` may take (the Node binary is a download of some 30 MB)
INSTALL_TIMEOUT = 600
DEFAULT_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "conformance"
REFERENCE_SOURCE = (Path(__file__).resolve().parent / "conformance_reference"
                    / "everything-server.ts")

_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}
_OS = {"Linux": "linux", "Darwin": "darwin"}
_LISTED = re.compile(r"^  - (?P<name>\S+)", re.MULTILINE)
#: the name of a scenario's results folder: ``[server-]<scenario>-<timestamp>``
_RESULT_DIR = re.compile(r"^(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


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


def _bin(cache: Path, package: str, name: str) -> Path:
    manifest = json.loads(
        (cache / "node_modules" / package / "package.json").read_text(encoding="utf-8"))
    bin_field = manifest["bin"]
    script = bin_field if isinstance(bin_field, str) else bin_field[name]
    return cache / "node_modules" / package / script


@dataclass(frozen=True)
class Suite:
    """An installed suite, the Node that runs it and the reference server beside it."""

    node: Path
    script: Path
    tsx: Path
    reference: Path

    def command(self, *args: str) -> list[str]:
        """The command line running the suite's CLI with ``args``."""
        return [str(self.node), str(self.script), *args]

    def _listed(self, role: str, era: str) -> list[str]:
        out = subprocess.run(self.command("list", f"--{role}", "--spec-version", era),
                             capture_output=True, text=True, check=True).stdout
        return [m["name"] for m in _LISTED.finditer(out)]

    def server_scenarios(self, era: str) -> list[str]:
        """The server scenarios ``server --suite all --spec-version era`` runs."""
        return self._listed("server", era)

    def client_scenarios(self, era: str) -> list[str]:
        """The client scenarios of ``era``, without the authorization ones (``auth/...``)."""
        return [name for name in self._listed("client", era) if not name.startswith("auth/")]

    def auth_scenarios(self, era: str) -> list[str]:
        """The authorization client scenarios of ``era`` (``auth/...``)."""
        return [name for name in self._listed("client", era) if name.startswith("auth/")]

    def server_run(self, url: str, era: str, output: Path) -> list[str]:
        """The command line running every server scenario of ``era`` against ``url``."""
        return self.command("server", "--url", url, "--suite", "all", "--spec-version", era,
                            "-o", str(output))

    def client_run(self, client: Sequence[str], scenario: str, era: str, output: Path,
                   timeout_ms: int) -> list[str]:
        """The command line running the client scenario ``scenario`` of ``era`` on ``client``.

        The suite splits ``client`` on spaces and appends the URL of its scenario server.
        """
        assert not any(" " in part for part in client), client
        return self.command("client", "--command", " ".join(client), "--scenario", scenario,
                            "--spec-version", era, "--timeout", str(timeout_ms),
                            "-o", str(output))

    def reference_command(self) -> list[str]:
        """The command line running the reference server (its port comes from ``PORT``)."""
        return [str(self.node), str(self.tsx), str(self.reference)]


def install(cache: Path | None = None) -> Suite:
    """Install the pinned suite (and Node 22 when needed) into ``cache``, unless already there.

    Test processes install it one at a time (a lock in the cache): the conformance files run
    on several xdist workers, and two ``npm install`` into one folder leave it broken.

    :raises SuiteUnavailable: when npm is missing or the platform has no Node 22 package.
    """
    cache = cache or Path(os.environ.get("VMCP_CONFORMANCE_CACHE") or DEFAULT_CACHE)
    cache.mkdir(parents=True, exist_ok=True)
    (cache / ".gitignore").write_text("*\n", encoding="utf-8")
    with (cache / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return _install(cache)


def _install(cache: Path) -> Suite:
    system_node = shutil.which("node")
    wanted = {SUITE: SUITE_VERSION, "tsx": TSX_VERSION, "cors": CORS_VERSION}
    bundled_node = system_node is None or _node_major(system_node) < NODE_MAJOR
    if bundled_node:
        wanted[_node_package()] = NODE_VERSION
    missing = [f"{name}@{version}" for name, version in wanted.items()
               if _installed_version(cache, name) != version]
    if missing:
        npm = shutil.which("npm")
        if npm is None:
            raise SuiteUnavailable("npm is not installed")
        subprocess.run(
            [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund",
             "--loglevel=error", *missing],
            check=True, timeout=INSTALL_TIMEOUT, stdout=subprocess.DEVNULL,
        )
    if bundled_node:
        node = cache / "node_modules" / _node_package() / "bin" / "node"
    else:
        assert system_node is not None
        node = Path(system_node)
    # inside the cache, so that its imports resolve from the cache's node_modules
    reference = cache / "reference" / REFERENCE_SOURCE.name
    if not reference.is_file() or reference.read_bytes() != REFERENCE_SOURCE.read_bytes():
        reference.parent.mkdir(exist_ok=True)
        shutil.copyfile(REFERENCE_SOURCE, reference)
    return Suite(node, _bin(cache, SUITE, "conformance"), _bin(cache, "tsx", "tsx"), reference)


@dataclass(frozen=True)
class ScenarioResult:
    """The checks of one scenario, counted by status, and the lines of those that failed."""

    scenario: str
    counts: dict[str, int]
    failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """No check failed or warned, and at least one succeeded."""
        return (self.counts.get("SUCCESS", 0) > 0 and not self.counts.get("FAILURE")
                and not self.counts.get("WARNING"))


def read_results(output_dir: Path, prefix: str = "server-") -> dict[str, ScenarioResult]:
    """The results the suite wrote with ``-o output_dir``, by scenario name.

    Server scenarios' folders are named ``server-<scenario>-<timestamp>``; client ones
    ``<scenario>-<timestamp>`` (``prefix=""``).
    """
    results: dict[str, ScenarioResult] = {}
    for checks_file in sorted(output_dir.rglob("checks.json")):
        folder = checks_file.parent.relative_to(output_dir).as_posix()
        match = _RESULT_DIR.match(folder.removeprefix(prefix))
        assert match and folder.startswith(prefix), f"unexpected results folder {folder}"
        counts: dict[str, int] = {}
        failures = []
        for check in json.loads(checks_file.read_text(encoding="utf-8")):
            counts[check["status"]] = counts.get(check["status"], 0) + 1
            if check["status"] in ("FAILURE", "WARNING"):
                failures.append(f"{check['id']} {check['status']}: "
                                f"{check.get('errorMessage') or check.get('description')}")
        results[match["scenario"]] = ScenarioResult(match["scenario"], counts, tuple(failures))
    return results
