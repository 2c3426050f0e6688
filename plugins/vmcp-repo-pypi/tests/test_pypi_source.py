"""The pypi source against a real local index: listing, MCP detection, releases, hashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vmcp_repo_pypi.simple import project_names
from vmcp_repo_pypi.source import PypiSource, base_url

from vmcp.plugins import load_driver
from vmcp.repository.parse import parse_all

pytestmark = pytest.mark.anyio


async def test_listing_keeps_mcp_servers_and_reports_broken_projects(
    index_url: str, tmp_path: Path
) -> None:
    raws = await PypiSource("p", index_url + "/simple/").fetch(tmp_path)
    parsed, problems = parse_all("p", raws)
    found = sorted((p.manifest.name, p.manifest.version) for p in parsed)
    assert found == [
        ("io.example/weather", "2.0.0"),  # named by its mcp-name line
        ("mcp-server-alpha", "1.0.0"),
        ("mcp-server-alpha", "1.1.0"),  # 0.9.0 is yanked
    ]
    # mcp-helper-lib is no server; "unrelated" does not match "mcp"
    assert len(problems) == 1
    assert "broken-mcp/json" in problems[0].location and "HTTP 404" in problems[0].message


async def test_manifest_points_back_at_the_index_with_the_wheel_hash(
    index_url: str, tmp_path: Path
) -> None:
    raws = await PypiSource("p", index_url, packages="weather-mcp").fetch(tmp_path)
    doc = json.loads(raws[0].text)
    package = doc["packages"][0]
    assert package == {
        "registryType": "pypi", "registryBaseUrl": index_url, "identifier": "weather-mcp",
        "version": "2.0.0", "transport": {"type": "stdio"}, "fileSha256": "d" * 64,
    }
    assert doc["tags"] == ["mcp", "weather"]
    assert doc["websiteUrl"] == "https://weather.example"
    assert raws[0].readme.startswith("# Weather")


async def test_explicit_packages_are_kept_even_without_mcp_markers(
    index_url: str, tmp_path: Path
) -> None:
    raws = await PypiSource("p", index_url, packages=["mcp-helper-lib"], versions=1).fetch(tmp_path)
    assert [json.loads(r.text)["name"] for r in raws] == ["mcp-helper-lib"]


def test_simple_json_api_and_base_url() -> None:
    body = json.dumps({"meta": {"api-version": "1.0"},
                       "projects": [{"name": "a-mcp"}, {"name": "b"}]}).encode()
    assert project_names(body) == ["a-mcp", "b"]
    assert base_url("https://pypi.org/simple/") == "https://pypi.org"


def test_settings_are_checked_and_driver_registered() -> None:
    with pytest.raises(ValueError, match="versions"):
        PypiSource("p", "https://pypi.org", versions=0)
    assert load_driver("repositories", "pypi") is PypiSource
