"""The http source against a real local server: static index and paginated registry API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from http_registry_fixture import Registry
from vmcp_repo_http.source import HttpSource, servers_endpoint

from vmcp.plugins import load_driver
from vmcp.repository.base import SourceError

pytestmark = pytest.mark.anyio


async def test_registry_api_is_read_page_by_page(registry: str, tmp_path: Path) -> None:
    raws = await HttpSource("r", registry, page_size=50).fetch(tmp_path)
    names = [json.loads(r.text)["name"] for r in raws]
    assert len(names) == 9  # ten servers, one marked deleted
    assert "example/server-05" not in names
    pages = [p for p in Registry.requests if p.startswith("/v0/servers")]
    assert len(pages) == 4  # 3 + 3 + 3 + 1
    assert "cursor=3" in pages[1] and "limit=50" in pages[0]
    assert raws[0].location.endswith("#servers/0")


async def test_static_index(registry: str, tmp_path: Path) -> None:
    raws = await HttpSource("i", f"{registry}/index.json").fetch(tmp_path)
    assert [json.loads(r.text)["name"] for r in raws][-1] == "example/server-03"
    assert Registry.requests == ["/index.json"]


async def test_failures_are_source_errors(registry: str, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="HTTP 500"):
        await HttpSource("x", f"{registry}/nothing-here").fetch(tmp_path)
    with pytest.raises(SourceError, match="repeated cursor"):
        await HttpSource("x", f"{registry}/loop").fetch(tmp_path)
    with pytest.raises(SourceError, match="'servers' list"):
        await HttpSource("x", f"{registry}/odd").fetch(tmp_path)


def test_endpoint_from_base_url() -> None:
    assert servers_endpoint("https://r.example") == "https://r.example/v0/servers"
    assert servers_endpoint("https://r.example/v0.1/") == "https://r.example/v0.1/servers"
    assert servers_endpoint("https://r.example/v0/servers") == "https://r.example/v0/servers"


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="page_size"):
        HttpSource("x", "https://r.example", page_size=0)
    with pytest.raises(ValueError, match="not an http"):
        HttpSource("x", "ftp://r.example")


def test_registered_as_the_http_driver() -> None:
    assert load_driver("repositories", "http") is HttpSource
