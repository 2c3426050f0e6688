"""Installing an npm package into its own prefix with ``npm install --prefix``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from vmcp.repository.archive import verify_sha256
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

_NPM_OPTIONS = ["--no-audit", "--no-fund", "--update-notifier=false", "--loglevel=error"]


class NpmMethod(InstallMethod):
    """``registryType: npm``: the package and its dependencies under ``<target>/node``.

    With a ``fileSha256`` in the manifest the package tarball is fetched first with
    ``npm pack``, checked, and installed from the checked file.
    """

    kind = "npm"

    def __init__(self, manifest: ServerManifest, package: Package) -> None:
        super().__init__(manifest)
        self.package = package
        self.npm = shutil.which("npm")

    def unavailable(self) -> str | None:
        """npm must be on the PATH, and the package must speak stdio."""
        if self.package.transport.type != "stdio":
            return f"package transport {self.package.transport.type!r} is not supported"
        if not self.npm:
            return "npm is not installed (install Node.js to use npm packages)"
        return None

    def summary(self) -> str:
        """The package and its version."""
        return self.spec

    def variables(self) -> list[Variable]:
        """The package's environment variables."""
        return to_variables(self.package.environment_variables)

    def arguments(self) -> list[Argument]:
        """The manifest's package arguments (after the command)."""
        return list(self.package.package_arguments)

    @property
    def spec(self) -> str:
        """``name@version`` (or just the name when the manifest pins no version)."""
        pkg = self.package
        return f"{pkg.identifier}@{pkg.version}" if pkg.version else pkg.identifier

    def _registry(self) -> list[str]:
        base = self.package.registry_base_url
        return ["--registry", base] if base else []

    def _commands(self, target: Path) -> list[list[str]]:
        npm = self.npm or "npm"
        prefix = ["--prefix", str(target / "node")]
        if not self.package.file_sha256:
            return [[npm, "install", *prefix, *_NPM_OPTIONS, *self._registry(), "--", self.spec]]
        packed = str(target / "download")
        # "--": what follows is a package spec, never an option (the manifest is checked too)
        return [
            [npm, "pack", "--pack-destination", packed, *_NPM_OPTIONS, *self._registry(), "--",
             self.spec],
            [npm, "install", *prefix, *_NPM_OPTIONS, *self._registry(), "--",
             f"{packed}/<tarball>"],
        ]

    def steps(self, target: Path) -> list[str]:
        """The npm commands that will run."""
        lines = [" ".join(cmd) for cmd in self._commands(target)]
        if self.package.file_sha256:
            lines.insert(1, f"check sha256 of the tarball = {self.package.file_sha256}")
        return lines

    async def install(self, target: Path) -> Launch:
        """Install the package and find the command it provides."""
        commands = self._commands(target)
        if self.package.file_sha256:
            download = target / "download"
            download.mkdir(parents=True)
            await run_command(commands[0], cwd=target)
            tarballs = sorted(download.glob("*.tgz"))
            if len(tarballs) != 1:
                raise InstallError(f"npm pack of {self.spec} did not produce one tarball")
            verify_sha256(tarballs[0].read_bytes(), self.package.file_sha256, self.spec)
            commands = [[*commands[1][:-1], str(tarballs[0])]]
        for command in commands:
            await run_command(command, cwd=target)
        node = target / "node"
        name = self._bin_name(node)
        args = render_arguments(self.package.package_arguments, self.argument_values)
        return check_command(str(node / "node_modules" / ".bin" / name), args)

    def _bin_name(self, node: Path) -> str:
        manifest = node / "node_modules" / self.package.identifier / "package.json"
        try:
            data = json.loads(manifest.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InstallError(f"cannot read {manifest}: {exc}") from exc
        unscoped = self.package.identifier.rsplit("/", 1)[-1]
        bins = data.get("bin")
        if isinstance(bins, str):
            return str(data.get("name", unscoped)).rsplit("/", 1)[-1]
        if isinstance(bins, dict) and bins:
            if unscoped in bins:
                return unscoped
            if len(bins) == 1:
                return next(iter(bins))
            raise InstallError(
                f"{self.package.identifier} has several commands ({', '.join(bins)}) "
                "and none is named like the package"
            )
        raise InstallError(f"{self.package.identifier} provides no command to run")
