"""The ``git`` source: clone once, then fetch and check out the pinned ref on every sync."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vmcp.config import format_errors
from vmcp.repository.base import RawManifest, RepositorySource, SourceError
from vmcp.repository.scan import scan_tree

_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "LC_ALL": "C"}


class GitSettings(BaseModel):
    """Settings of a ``git`` source (keys of its table in ``repositories.toml``)."""

    model_config = ConfigDict(extra="forbid")

    #: a branch or tag to pin to; the remote's default branch when unset
    ref: str | None = None
    #: only scan this folder of the repository
    subdir: str | None = None
    #: seconds one git command may take
    timeout: float = Field(300.0, gt=0)

    @field_validator("ref")
    @classmethod
    def _safe_ref(cls, value: str | None) -> str | None:
        if value is not None and (not value or value.startswith("-") or ".." in value):
            raise ValueError("must be a branch or tag name")
        return value

    @field_validator("subdir")
    @classmethod
    def _inside(cls, value: str | None) -> str | None:
        if value is not None:
            path = PurePosixPath(value)
            if path.is_absolute() or ".." in path.parts:
                raise ValueError("must be a relative folder inside the repository")
        return value


class GitSource(RepositorySource):
    """A git repository of manifests (``server.json`` files, or ``install.json`` folders).

    The clone lives in the source's work folder. Each sync fetches and checks out ``ref``
    (a branch follows the remote; a tag stays put), so a pull that brings new servers shows
    up at the next ``vmcp repo sync``.
    """

    def __init__(self, name: str, url: str, **settings: Any) -> None:
        super().__init__(name, url, **settings)
        try:
            self.config = GitSettings.model_validate(settings)
        except ValidationError as exc:
            raise ValueError(f"source {name!r}: " + "; ".join(format_errors(exc))) from exc
        if url.startswith("-"):
            raise ValueError(f"source {name!r}: invalid git URL {url!r}")

    async def _git(self, *args: str, cwd: Path | None = None) -> str:
        command = ["git", *args]
        try:
            with anyio.fail_after(self.config.timeout):
                done = await anyio.run_process(
                    command, cwd=cwd, check=False, stdin=subprocess.DEVNULL,
                    env={**os.environ, **_GIT_ENV},
                )
        except TimeoutError as exc:
            raise SourceError(f"git {args[0]} timed out after {self.config.timeout:g}s") from exc
        except OSError as exc:
            raise SourceError(f"cannot run git: {exc.strerror or exc}") from exc
        if done.returncode != 0:
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SourceError(f"git {args[0]} failed: {detail[-1] if detail else done.returncode}")
        return done.stdout.decode("utf-8", "replace").strip()

    async def _checkout_dir(self, workdir: Path) -> Path:
        checkout = workdir / "checkout"
        if (checkout / ".git").is_dir():
            origin = await self._git("remote", "get-url", "origin", cwd=checkout)
            if origin == self.url:
                await self._git("fetch", "--quiet", "--prune", "--tags", "--force", "origin",
                                cwd=checkout)
                return checkout
        shutil.rmtree(checkout, ignore_errors=True)
        await self._git("clone", "--quiet", "--no-checkout", "--", self.url, str(checkout))
        return checkout

    async def _target(self, checkout: Path) -> str:
        ref = self.config.ref
        if ref is None:
            return "origin/HEAD"
        for candidate in (f"refs/remotes/origin/{ref}", f"refs/tags/{ref}"):
            try:
                await self._git("rev-parse", "--verify", "--quiet", candidate + "^{commit}",
                                cwd=checkout)
            except SourceError:
                continue
            return candidate
        raise SourceError(f"{self.url} has no branch or tag {ref!r}")

    async def fetch(self, workdir: Path) -> list[RawManifest]:
        """Clone or fetch, check out the pinned ref, and scan the tree for manifests."""
        checkout = await self._checkout_dir(workdir)
        target = await self._target(checkout)
        await self._git("checkout", "--quiet", "--force", "--detach", target, cwd=checkout)
        await self._git("clean", "-ffdxq", cwd=checkout)
        root = checkout / self.config.subdir if self.config.subdir else checkout
        if not root.is_dir() or root.is_symlink():
            raise SourceError(f"{self.url} has no folder {self.config.subdir!r}")
        return scan_tree(root)
