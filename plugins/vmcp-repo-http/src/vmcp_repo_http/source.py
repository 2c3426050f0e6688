"""The ``http`` source: a static ``index.json``, or the MCP registry REST API page by page."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode, urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vmcp.config import format_errors
from vmcp.repository.base import RawManifest, RepositorySource, SourceError
from vmcp.repository.net import get_json
from vmcp.repository.registry_format import FormatError, entries_from_page


class HttpSettings(BaseModel):
    """Settings of an ``http`` source (keys of its table in ``repositories.toml``)."""

    model_config = ConfigDict(extra="forbid")

    #: ``index`` (one JSON document), ``registry`` (the paginated API) or ``auto``: a URL whose
    #: path ends in ``.json`` is an index, anything else a registry
    format: Literal["auto", "index", "registry"] = "auto"
    #: servers asked for per registry page
    page_size: int = Field(100, ge=1, le=1000)
    #: give up after this many pages (a registry that never stops paginating)
    max_pages: int = Field(1000, ge=1)
    #: seconds one request may take
    timeout: float = Field(30.0, gt=0)


def servers_endpoint(url: str) -> str:
    """The ``/v0/servers`` endpoint of a registry given by its base URL (or the endpoint)."""
    base = url.split("?", 1)[0].rstrip("/")
    if base.endswith("/servers"):
        return base
    last = base.rsplit("/", 1)[-1]
    if last.startswith("v0"):
        return base + "/servers"
    return base + "/v0/servers"


class HttpSource(RepositorySource):
    """Manifests served over HTTP(S).

    A static index is a JSON list of ``server.json`` objects, or a registry-style page
    (``{"servers": [...]}``). A registry is read from ``GET /v0/servers?limit=N`` following
    ``metadata.nextCursor`` until the last page.
    """

    def __init__(self, name: str, url: str, **settings: Any) -> None:
        super().__init__(name, url, **settings)
        try:
            self.config = HttpSettings.model_validate(settings)
        except ValidationError as exc:
            raise ValueError(f"source {name!r}: " + "; ".join(format_errors(exc))) from exc
        if urlparse(url).scheme not in ("http", "https"):
            raise ValueError(f"source {name!r}: {url!r} is not an http(s) URL")

    @property
    def is_index(self) -> bool:
        """Whether the URL is read as one static index document."""
        if self.config.format != "auto":
            return self.config.format == "index"
        return urlparse(self.url).path.endswith(".json")

    async def fetch(self, workdir: Path) -> list[RawManifest]:
        """Read the index, or every page of the registry."""
        if self.is_index:
            return self._page(await get_json(self.url, timeout=self.config.timeout), self.url)[0]
        endpoint = servers_endpoint(self.url)
        manifests: list[RawManifest] = []
        seen: set[str] = set()
        cursor: str | None = None
        for _ in range(self.config.max_pages):
            query: dict[str, Any] = {"limit": self.config.page_size}
            if cursor is not None:
                query["cursor"] = cursor
            url = f"{endpoint}?{urlencode(query)}"
            page, cursor = self._page(await get_json(url, timeout=self.config.timeout), url)
            manifests.extend(page)
            if cursor is None:
                return manifests
            if cursor in seen:
                raise SourceError(f"{endpoint}: the registry repeated cursor {cursor!r}")
            seen.add(cursor)
        raise SourceError(f"{endpoint}: more than {self.config.max_pages} pages")

    @staticmethod
    def _page(payload: Any, url: str) -> tuple[list[RawManifest], str | None]:
        try:
            return entries_from_page(payload, url)
        except FormatError as exc:
            raise SourceError(str(exc)) from exc
