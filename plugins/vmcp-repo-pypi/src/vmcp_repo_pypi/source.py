"""The ``pypi`` source: MCP server packages from a PyPI-compatible index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vmcp.config import format_errors
from vmcp.repository.base import RawManifest, RepositorySource
from vmcp.repository.net import FetchError, get_bytes, get_json
from vmcp_repo_pypi.project import is_mcp_server, manifests
from vmcp_repo_pypi.simple import SIMPLE_JSON, normalize, project_names


class PypiSettings(BaseModel):
    """Settings of a ``pypi`` source (keys of its table in ``repositories.toml``)."""

    model_config = ConfigDict(extra="forbid")

    #: exactly these projects (a list, or names separated by commas); else the index is listed
    packages: list[str] = Field(default_factory=list)
    #: when listing the index: keep projects whose name contains this text
    match: str = "mcp"
    #: when listing the index: look at no more than this many matching projects
    limit: int = Field(200, ge=1)
    #: releases per project turned into manifests, newest first
    versions: int = Field(5, ge=1)
    #: JSON documents fetched at once
    concurrency: int = Field(8, ge=1, le=64)
    #: seconds one request may take
    timeout: float = Field(30.0, gt=0)

    @field_validator("packages", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


def base_url(url: str) -> str:
    """The index's root URL, without a trailing ``/simple``."""
    base = url.rstrip("/")
    return base.removesuffix("/simple")


class PypiSource(RepositorySource):
    """Python packages that are MCP servers, from the simple API and the JSON API.

    Projects are the ``packages`` setting, or the names on the index's simple page that
    contain ``match``. Each project's ``/pypi/<name>/json`` document is read; one that is not
    an MCP server (no MCP SDK dependency, no ``mcp`` keyword, no ``mcp-name:``) is left out
    unless named in ``packages``. Each kept release becomes a ``server.json`` whose package
    points back at this index, with the sha256 of its pure-Python wheel.
    """

    def __init__(self, name: str, url: str, **settings: Any) -> None:
        super().__init__(name, url, **settings)
        try:
            self.config = PypiSettings.model_validate(settings)
        except ValidationError as exc:
            raise ValueError(f"source {name!r}: " + "; ".join(format_errors(exc))) from exc
        self.base = base_url(url)

    async def _candidates(self) -> list[str]:
        if self.config.packages:
            return self.config.packages
        body = await get_bytes(
            f"{self.base}/simple/",
            headers={"Accept": f"{SIMPLE_JSON}, text/html;q=0.1"},
            timeout=self.config.timeout,
            max_bytes=512 * 1024 * 1024,
        )
        wanted = normalize(self.config.match)
        names = [n for n in project_names(body) if wanted in normalize(n)]
        return sorted(names, key=normalize)[: self.config.limit]

    async def fetch(self, workdir: Path) -> list[RawManifest]:
        """List the candidate projects, read each one's JSON document, keep MCP servers."""
        names = await self._candidates()
        explicit = {normalize(n) for n in self.config.packages}
        found: dict[str, list[RawManifest]] = {}
        limiter = anyio.Semaphore(self.config.concurrency)

        async def one(project: str) -> None:
            url = f"{self.base}/pypi/{normalize(project)}/json"
            async with limiter:
                try:
                    document = await get_json(url, timeout=self.config.timeout)
                except FetchError as exc:
                    found[project] = [RawManifest(url, "server.json", "", error=str(exc))]
                    return
            info = document.get("info") if isinstance(document, dict) else None
            if not isinstance(info, dict):
                found[project] = [RawManifest(url, "server.json", "", error="no 'info' object")]
                return
            if normalize(project) not in explicit and not is_mcp_server(info):
                return
            found[project] = [
                RawManifest(f"{url}#{doc['version']}", "server.json", json.dumps(doc),
                            readme=info.get("description") or "")
                for doc in manifests(document, self.base, self.config.versions)
            ]

        async with anyio.create_task_group() as tg:
            for project in names:
                tg.start_soon(one, project)
        return [raw for project in names for raw in found.get(project, [])]
