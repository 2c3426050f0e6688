"""Fixtures for the pypi source tests: a static PyPI-compatible index served over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vmcp.testing import serve_folder


def project(name: str, summary: str, releases: dict[str, list[dict[str, Any]]],
            **info: Any) -> dict[str, Any]:
    """A JSON-API document for one project."""
    latest = max(releases)
    return {"info": {"name": name, "summary": summary, "version": latest, **info},
            "releases": releases, "urls": releases[latest]}


def wheel(name: str, version: str, digest: str, yanked: bool = False) -> dict[str, Any]:
    """One file entry of a release."""
    return {"filename": f"{name.replace('-', '_')}-{version}-py3-none-any.whl",
            "digests": {"sha256": digest}, "yanked": yanked}


PROJECTS = {
    "mcp-server-alpha": project(
        "mcp-server-alpha", "Alpha tools",
        {"1.0.0": [wheel("mcp-server-alpha", "1.0.0", "a" * 64)],
         "1.1.0": [wheel("mcp-server-alpha", "1.1.0", "b" * 64)],
         "0.9.0": [wheel("mcp-server-alpha", "0.9.0", "c" * 64, yanked=True)]},
        requires_dist=["mcp>=1.2", "httpx"], keywords="tools"),
    "weather-mcp": project(
        "weather-mcp", "Weather forecasts", {"2.0.0": [wheel("weather-mcp", "2.0.0", "d" * 64)]},
        keywords="mcp, weather", description="# Weather\n\nmcp-name: io.example/weather\n",
        project_urls={"Homepage": "https://weather.example"}),
    "mcp-helper-lib": project(
        "mcp-helper-lib", "Not a server", {"1.0": [wheel("mcp-helper-lib", "1.0", "e" * 64)]},
        requires_dist=["requests"]),
    "unrelated": project("unrelated", "Nothing to do with it",
                         {"1.0": [wheel("unrelated", "1.0", "f" * 64)]},
                         requires_dist=["mcp"]),
}


def build_index(root: Path) -> None:
    """The simple root page, and ``/pypi/<name>/json`` for every project but ``broken-mcp``."""
    names = [*PROJECTS, "broken-mcp"]
    links = "".join(f'<a href="/simple/{n}/">{n}</a>\n' for n in names)
    (root / "simple").mkdir(parents=True)
    (root / "simple" / "index.html").write_text(f"<html><body>\n{links}</body></html>")
    for name, doc in PROJECTS.items():
        folder = root / "pypi" / name
        folder.mkdir(parents=True)
        (folder / "json").write_text(json.dumps(doc))


@pytest.fixture
def index_url(tmp_path: Path) -> Iterator[str]:
    """The base URL of the served index."""
    root = tmp_path / "index"
    build_index(root)
    with serve_folder(root) as url:
        yield url


@pytest.fixture
def anyio_backend() -> str:
    """Run ``pytest.mark.anyio`` tests on asyncio only."""
    return "asyncio"
