"""The folder-per-server layout: ``<server>/MANIFEST.md`` + ``<server>/install.json``.

A simpler format than ``server.json`` for hand-written repositories. ``MANIFEST.md`` is the
server's readme: its first ``# heading`` is the title and its first paragraph the description.
``install.json`` says how to install it::

    {
      "name": "example/weather",          // optional: the folder name otherwise
      "version": "1.2.0",
      "description": "...",               // optional when MANIFEST.md has a paragraph
      "tags": ["weather", "forecast"],
      "install": [
        {"method": "pypi", "package": "weather-mcp", "version": "1.2.0",
         "sha256": "<hex>", "index": "https://pypi.org",
         "args": ["--units", "metric"],
         "env": {"WEATHER_API_KEY": {"description": "API key", "required": true, "secret": true}}},
        {"method": "npm", "package": "@example/weather", "args": []},
        {"method": "mcpb", "url": "https://example.org/weather.mcpb", "sha256": "<hex>"},
        {"method": "remote", "url": "https://weather.example/mcp", "transport": "streamable-http",
         "headers": {"Authorization": {"value": "Bearer {WEATHER_TOKEN}", "secret": true}}}
      ]
    }

:func:`server_json_from_folder` converts it to a ``server.json`` document, so the rest of vmcp
knows one format only.
"""

from __future__ import annotations

import re
from typing import Any

from vmcp.repository.manifest import ManifestError

_PACKAGE_METHODS = ("pypi", "npm")


def server_json_from_folder(data: Any, readme: str, location: str) -> dict[str, Any]:
    """Convert a decoded ``install.json`` (and its ``MANIFEST.md`` text) to ``server.json``."""
    if not isinstance(data, dict):
        raise ManifestError("install.json must be a JSON object")
    title, paragraph = _readme_parts(readme)
    install = data.get("install")
    if not isinstance(install, list) or not install:
        raise ManifestError("install: a non-empty list of install methods is required")
    doc: dict[str, Any] = {
        "name": data.get("name") or _folder_name(location),
        "description": data.get("description") or paragraph,
        "version": data.get("version"),
        "title": data.get("title") or title,
        "tags": data.get("tags", []),
        "packages": [],
        "remotes": [],
    }
    if data.get("website"):
        doc["websiteUrl"] = data["website"]
    for n, entry in enumerate(install):
        if not isinstance(entry, dict):
            raise ManifestError(f"install.{n}: must be an object")
        method = entry.get("method")
        if method in _PACKAGE_METHODS:
            doc["packages"].append(_package(entry, method))
        elif method == "mcpb":
            doc["packages"].append(_bundle(entry, n))
        elif method == "remote":
            doc["remotes"].append(_remote(entry))
        else:
            raise ManifestError(
                f"install.{n}.method: expected pypi, npm, mcpb or remote, got {method!r}"
            )
    return {key: value for key, value in doc.items() if value is not None}


def _readme_parts(readme: str) -> tuple[str | None, str]:
    title = None
    paragraph: list[str] = []
    for line in readme.splitlines():
        stripped = line.strip()
        if title is None and not paragraph and stripped.startswith("# "):
            title = stripped[2:].strip()
        elif stripped and not stripped.startswith("#"):
            paragraph.append(stripped)
        elif paragraph:
            break
    return title, " ".join(paragraph)[:2000]


def _folder_name(location: str) -> str:
    parts = [p for p in re.split(r"[\\/]", location) if p]
    return parts[-2] if len(parts) >= 2 else ""


def _inputs(table: Any, where: str) -> list[dict[str, Any]]:
    if table is None:
        return []
    if not isinstance(table, dict):
        raise ManifestError(f"{where}: must be an object of NAME: {{...}}")
    inputs = []
    for name, spec in table.items():
        spec = {"value": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, dict):
            raise ManifestError(f"{where}.{name}: must be a string or an object")
        inputs.append({
            "name": name,
            "description": spec.get("description", ""),
            "isRequired": bool(spec.get("required", False)),
            "isSecret": bool(spec.get("secret", False)),
            "default": spec.get("default"),
            "value": spec.get("value"),
        })
    return inputs


def _package(entry: dict[str, Any], method: str) -> dict[str, Any]:
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ManifestError("install.args: must be a list of strings")
    package: dict[str, Any] = {
        "registryType": method,
        "identifier": entry.get("package"),
        "version": entry.get("version"),
        "transport": {"type": "stdio"},
        "packageArguments": [{"type": "positional", "value": a} for a in args],
        "environmentVariables": _inputs(entry.get("env"), "install.env"),
    }
    if entry.get("sha256"):
        package["fileSha256"] = entry["sha256"]
    if entry.get("index"):
        package["registryBaseUrl"] = entry["index"]
    return package


def _bundle(entry: dict[str, Any], n: int) -> dict[str, Any]:
    if not entry.get("sha256"):
        raise ManifestError(f"install.{n}.sha256: required for an mcpb bundle")
    return {
        "registryType": "mcpb",
        "identifier": entry.get("url"),
        "fileSha256": entry["sha256"],
        "transport": {"type": "stdio"},
        "environmentVariables": _inputs(entry.get("env"), "install.env"),
    }


def _remote(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": entry.get("transport", "streamable-http"),
        "url": entry.get("url"),
        "headers": _inputs(entry.get("headers"), "install.headers"),
    }
