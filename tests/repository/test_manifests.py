"""Manifests: the registry's server.json, the folder layout, and how invalid ones are reported."""

from __future__ import annotations

import json

import pytest

from vmcp.repository.base import RawManifest
from vmcp.repository.manifest import ManifestError
from vmcp.repository.parse import parse_all, parse_manifest
from vmcp.repository.versions import version_key

OFFICIAL = {
    "$schema": "https://static.modelcontextprotocol.io/schemas/2025-09-29/server.schema.json",
    "name": "io.github.example/weather",
    "title": "Weather",
    "description": "Forecasts and current conditions",
    "version": "1.4.0",
    "websiteUrl": "https://example.org/weather",
    "repository": {"url": "https://github.com/example/weather", "source": "github"},
    "packages": [
        {
            "registryType": "pypi",
            "registryBaseUrl": "https://pypi.org",
            "identifier": "weather-mcp",
            "version": "1.4.0",
            "fileSha256": "A" * 64,
            "runtimeHint": "uvx",
            "transport": {"type": "stdio"},
            "packageArguments": [
                {"type": "named", "name": "--units", "value": "metric"},
                {"type": "positional", "valueHint": "city", "default": "Paris"},
            ],
            "environmentVariables": [
                {"name": "WEATHER_API_KEY", "description": "API key", "isRequired": True,
                 "isSecret": True},
                {"name": "WEATHER_LANG", "default": "en"},
            ],
        },
        {"registryType": "npm", "identifier": "@example/weather", "version": "1.4.0",
         "transport": {"type": "stdio"}},
        {"registryType": "oci", "identifier": "docker.io/example/weather:1.4.0",
         "transport": {"type": "stdio"}},
    ],
    "remotes": [{"type": "sse", "url": "https://weather.example/sse"}],
    "_meta": {"io.modelcontextprotocol.registry/publisher-provided": {"tags": ["forecast"]}},
}


def raw(data: object, kind: str = "server.json", readme: str = "", where: str = "x/server.json"):
    text = data if isinstance(data, str) else json.dumps(data)
    return RawManifest(location=where, kind=kind, text=text, readme=readme)


def test_official_server_json_is_read_with_every_part() -> None:
    parsed = parse_manifest(raw(OFFICIAL))
    m = parsed.manifest
    assert (m.name, m.short_name, m.version, m.title) == (
        "io.github.example/weather", "weather", "1.4.0", "Weather")
    assert m.tags == ["forecast"]
    pypi = m.packages[0]
    assert pypi.file_sha256 == "a" * 64  # normalised to lower case
    assert pypi.package_arguments[0].name == "--units"
    assert [v.name for v in pypi.environment_variables] == ["WEATHER_API_KEY", "WEATHER_LANG"]
    assert pypi.environment_variables[0].is_secret
    assert [p.registry_type for p in m.packages] == ["pypi", "npm", "oci"]
    assert m.remotes[0].type == "sse"
    assert parsed.document == OFFICIAL  # stored as given, for `vmcp show`


def test_folder_layout_takes_title_and_description_from_manifest_md() -> None:
    install = {
        "version": "0.3.0",
        "tags": ["notes"],
        "install": [
            {"method": "pypi", "package": "notes-mcp", "version": "0.3.0", "args": ["--ro"],
             "env": {"NOTES_DIR": {"description": "where notes live", "required": True}}},
            {"method": "remote", "url": "https://notes.example/mcp",
             "headers": {"Authorization": {"value": "Bearer {token}", "secret": True}}},
        ],
    }
    readme = "# Notes\n\nKeep notes\nacross sessions.\n\n## Usage\n\nRun it.\n"
    parsed = parse_manifest(raw(install, "install.json", readme, "servers/notes/install.json"))
    m = parsed.manifest
    assert (m.name, m.title, m.description) == ("notes", "Notes", "Keep notes across sessions.")
    assert m.packages[0].identifier == "notes-mcp"
    assert m.packages[0].package_arguments[0].value == "--ro"
    assert m.packages[0].environment_variables[0].is_required
    assert m.remotes[0].headers[0].is_secret
    assert parsed.readme == readme


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "must be a JSON object"),
        ({"name": "a/b", "version": "1"}, "description: field required"),
        ({"name": "bad name!", "description": "d", "version": "1",
          "remotes": [{"type": "sse", "url": "https://x"}]}, "name:"),
        ({"name": "a/b", "description": "d", "version": "../../etc",
          "remotes": [{"type": "sse", "url": "https://x"}]}, "version:"),
        ({"name": "a/b", "description": "d", "version": "1"}, "nothing to install"),
        ({"name": "a/b", "description": "d", "version": "1",
          "remotes": [{"type": "sse", "url": "ftp://x"}]}, "http(s) URL"),
        ({"name": "a/b", "description": "d", "version": "1",
          "packages": [{"registryType": "pypi", "identifier": "x", "fileSha256": "zz"}]},
         "64 hexadecimal"),
    ],
)
def test_invalid_manifests_say_why(data: object, message: str) -> None:
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_manifest(raw(data))


def test_folder_layout_needs_install_methods() -> None:
    with pytest.raises(ManifestError, match="install"):
        parse_manifest(raw({"version": "1"}, "install.json", "# T\n\nd\n", "s/x/install.json"))


def test_parse_all_reports_invalid_and_duplicate_with_source_and_location() -> None:
    good = {"name": "a/one", "description": "d", "version": "1.0.0",
            "remotes": [{"type": "sse", "url": "https://one"}]}
    parsed, problems = parse_all("community", [
        raw(good, where="one/server.json"),
        raw("{", where="broken/server.json"),
        raw(good, where="copy/server.json"),
    ])
    assert [p.manifest.name for p in parsed] == ["a/one"]
    assert [str(p).split(":")[0:2] for p in problems] == [
        ["community", " broken/server.json"], ["community", " copy/server.json"]]
    assert "already defined at one/server.json" in problems[1].message


def test_versions_sort_numerically_with_prereleases_first() -> None:
    versions = ["1.10.0", "1.2.0", "1.2.0-beta.1", "1.2.0rc1", "0.9", "1.2", "2.0.0a1"]
    assert sorted(versions, key=version_key) == [
        "0.9", "1.2.0-beta.1", "1.2.0rc1", "1.2.0", "1.2", "1.10.0", "2.0.0a1"]
    assert max(["v1.9.9", "v1.10.0"], key=version_key) == "v1.10.0"
