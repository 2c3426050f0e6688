"""Installing a PyPI package into its own virtual environment (uv, or venv + pip)."""

from __future__ import annotations

import os
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path

from vmcp.repository.errors import InstallError
from vmcp.repository.installed import Launch, Variable
from vmcp.repository.manifest import Argument, Package, ServerManifest
from vmcp.repository.methods.base import (
    InstallMethod,
    check_command,
    render_arguments,
    to_variables,
)
from vmcp.repository.process import run_command

DEFAULT_INDEX_HOSTS = ("https://pypi.org", "https://pypi.python.org")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _bin_dir(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


class PypiMethod(InstallMethod):
    """``registryType: pypi``: a venv per server version, the package pinned in it.

    With uv on the PATH: ``uv venv`` then ``uv pip install``; otherwise ``python -m venv``
    and pip. A ``fileSha256`` in the manifest is passed as a ``--hash`` the installer checks.
    A ``registryBaseUrl`` other than PyPI is searched first, PyPI (or the user's configured
    index) serving the dependencies.
    """

    kind = "pypi"

    def __init__(self, manifest: ServerManifest, package: Package) -> None:
        super().__init__(manifest)
        self.package = package
        self.uv = shutil.which("uv")

    def unavailable(self) -> str | None:
        """Always usable: pip comes with Python when uv is missing."""
        if self.package.transport.type != "stdio":
            return f"package transport {self.package.transport.type!r} is not supported"
        return None

    def summary(self) -> str:
        """The package and its version."""
        return self.requirement.split(" --hash", 1)[0]

    def variables(self) -> list[Variable]:
        """The package's environment variables."""
        return to_variables(self.package.environment_variables)

    def arguments(self) -> list[Argument]:
        """The manifest's package arguments (after the command)."""
        return list(self.package.package_arguments)

    @property
    def requirement(self) -> str:
        """The requirement line: ``name==version`` with the hash when the manifest has one.

        The manifest's name and version follow PEP 508 and PEP 440
        (:mod:`vmcp.repository.package_specs`), so the line can hold no option or second line.
        """
        line = self.package.identifier
        if self.package.version:
            line += f"=={self.package.version}"
        if self.package.file_sha256:
            line += f" --hash=sha256:{self.package.file_sha256}"
        return line

    def _index_options(self) -> list[str]:
        base = (self.package.registry_base_url or "").rstrip("/")
        if not base or base in DEFAULT_INDEX_HOSTS:
            return []
        return ["--extra-index-url", base if base.endswith("/simple") else base + "/simple/"]

    def _commands(self, target: Path) -> list[list[str]]:
        venv = target / "venv"
        python = str(_bin_dir(venv) / "python")
        req = str(target / "requirements.txt")
        index = self._index_options()
        if self.uv:
            return [
                [self.uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
                [self.uv, "pip", "install", "--quiet", "--python", python, *index, "-r", req],
            ]
        pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *index]
        commands = [[sys.executable, "-m", "venv", str(venv)]]
        if self.package.file_sha256:
            # pip checks hashes for every requirement once one has a hash: verify the package
            # alone first, then let pip add its dependencies.
            commands.append([*pip, "--no-deps", "-r", req])
        commands.append([*pip, "-r", str(target / "requirements-deps.txt")])
        return commands

    def steps(self, target: Path) -> list[str]:
        """The commands that will run, and the requirement they install."""
        lines = [" ".join(cmd) for cmd in self._commands(target)]
        lines.append(f"requirement: {self.requirement}")
        return lines

    async def install(self, target: Path) -> Launch:
        """Create the venv, install the package, find its console script."""
        (target / "requirements.txt").write_text(self.requirement + "\n", "utf-8")
        if not self.uv:
            plain = self.requirement.split(" --hash", 1)[0]
            (target / "requirements-deps.txt").write_text(plain + "\n", "utf-8")
        for command in self._commands(target):
            await run_command(command)
        venv = target / "venv"
        script = self._console_script(venv)
        args = render_arguments(self.package.package_arguments, self.argument_values)
        return check_command(str(_bin_dir(venv) / script), args)

    def _console_script(self, venv: Path) -> str:
        wanted = _normalize(self.package.identifier)
        site = [str(p) for p in venv.glob("lib/python*/site-packages")]
        site += [str(p) for p in venv.glob("Lib/site-packages")]
        for dist in metadata.distributions(path=site):
            if _normalize(dist.metadata["Name"] or "") != wanted:
                continue
            scripts = [ep.name for ep in dist.entry_points if ep.group == "console_scripts"]
            for name in scripts:
                if _normalize(name) == wanted:
                    return name
            if len(scripts) == 1:
                return scripts[0]
            if scripts:
                raise InstallError(
                    f"{self.package.identifier} has several commands ({', '.join(scripts)}) "
                    "and none is named like the package"
                )
            raise InstallError(f"{self.package.identifier} installs no command to run")
        raise InstallError(f"{self.package.identifier} is not in the new environment")
