"""Installing an MCP bundle (``registryType: mcpb``): a zip with a ``manifest.json``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from vmcp.repository.archive import extract_zip, verify_sha256
from vmcp.repository.errors import InstallError
from vmcp.repository.installed import Launch, Variable
from vmcp.repository.manifest import Argument, Package, ServerManifest
from vmcp.repository.methods.base import (
    InstallMethod,
    check_command,
    render_arguments,
    to_variables,
)
from vmcp.repository.net import FetchError, get_bytes

MAX_BUNDLE_BYTES = 512 * 1024 * 1024
_PLACEHOLDER_RE = re.compile(r"\$\{([^}]*)\}")


class BundleMethod(InstallMethod):
    """Download the bundle named by ``identifier`` (a URL), check its required ``fileSha256``,
    unpack it under ``<target>/bundle`` and run the command its ``server.mcp_config`` gives,
    with ``${__dirname}`` meaning the unpacked folder."""

    kind = "mcpb"

    def __init__(self, manifest: ServerManifest, package: Package) -> None:
        super().__init__(manifest)
        self.package = package

    def unavailable(self) -> str | None:
        """A bundle needs its hash in the manifest; nothing unchecked is unpacked."""
        if not self.package.file_sha256:
            return "the manifest gives no fileSha256 for the bundle"
        return None

    def summary(self) -> str:
        """The bundle's URL."""
        return self.package.identifier

    def variables(self) -> list[Variable]:
        """The bundle's environment variables, as the manifest lists them."""
        return to_variables(self.package.environment_variables)

    def arguments(self) -> list[Argument]:
        """The manifest's package arguments (after the command)."""
        return list(self.package.package_arguments)

    def steps(self, target: Path) -> list[str]:
        """Download, check, unpack."""
        return [
            f"download {self.package.identifier}",
            f"check sha256 = {self.package.file_sha256}",
            f"unpack into {target / 'bundle'}",
        ]

    async def install(self, target: Path) -> Launch:
        """Fetch, verify and unpack the bundle; read its launch command."""
        url = self.package.identifier
        try:
            data = await get_bytes(url, timeout=300, max_bytes=MAX_BUNDLE_BYTES)
        except FetchError as exc:
            raise InstallError(str(exc)) from exc
        verify_sha256(data, self.package.file_sha256 or "", url)
        folder = target / "bundle"
        folder.mkdir(parents=True)
        extract_zip(data, folder)
        config = self._mcp_config(folder)
        dirname = str(folder.resolve())
        command = _expand(str(config.get("command", "")), dirname)
        if not command:
            raise InstallError("the bundle's manifest.json gives no server command")
        args = [_expand(str(a), dirname) for a in config.get("args", [])]
        args += render_arguments(self.package.package_arguments, self.argument_values)
        launch = check_command(command, args)
        env = config.get("env", {})
        fixed = [
            Variable(name=str(k), value=_expand(str(v), dirname))
            for k, v in (env.items() if isinstance(env, dict) else [])
        ]
        return launch.model_copy(update={"variables": fixed})

    @staticmethod
    def _mcp_config(folder: Path) -> dict[str, Any]:
        try:
            data = json.loads((folder / "manifest.json").read_text("utf-8"))
            config = data["server"]["mcp_config"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InstallError(f"the bundle has no usable manifest.json: {exc}") from exc
        if not isinstance(config, dict):
            raise InstallError("the bundle's server.mcp_config is not an object")
        return config


def _expand(text: str, dirname: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "__dirname":
            return dirname
        raise InstallError(f"the bundle uses ${{{match.group(1)}}}, which vmcp cannot fill in")

    return _PLACEHOLDER_RE.sub(replace, text)
