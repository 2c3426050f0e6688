"""Turning a project's JSON-API document into ``server.json`` manifests, one per release."""

from __future__ import annotations

import re
from typing import Any

from vmcp.repository.versions import version_key

_MCP_NAME_RE = re.compile(r"mcp-name:\s*([A-Za-z0-9][A-Za-z0-9.-]*/[A-Za-z0-9._-]+)")
_MCP_REQUIREMENT_RE = re.compile(r"^\s*(mcp|fastmcp)\b", re.IGNORECASE)


def is_mcp_server(info: dict[str, Any]) -> bool:
    """Whether a project looks like an MCP server: it depends on an MCP SDK, has the ``mcp``
    keyword, or declares its registry name with ``mcp-name:`` in its description."""
    requires = info.get("requires_dist") or []
    if any(isinstance(r, str) and _MCP_REQUIREMENT_RE.match(r) for r in requires):
        return True
    if "mcp" in keywords(info):
        return True
    return bool(_MCP_NAME_RE.search(info.get("description") or ""))


def keywords(info: dict[str, Any]) -> list[str]:
    """The project's keywords, split on commas or spaces, lower-cased."""
    raw = info.get("keywords") or ""
    if isinstance(raw, list):
        raw = ",".join(str(k) for k in raw)
    return [k.lower() for k in re.split(r"[,\s]+", raw) if k]


def _universal_sha256(files: list[dict[str, Any]]) -> str | None:
    """The sha256 of the release's pure-Python wheel, the file an installer will pick."""
    for file in files:
        if file.get("filename", "").endswith("-none-any.whl"):
            digest = (file.get("digests") or {}).get("sha256")
            return digest if isinstance(digest, str) else None
    return None


def manifests(document: dict[str, Any], base_url: str, max_versions: int) -> list[dict[str, Any]]:
    """``server.json`` documents for the newest ``max_versions`` releases that have files.

    The server's name is the ``mcp-name:`` its description declares, else the project name.
    """
    info = document.get("info") or {}
    project = info.get("name") or ""
    description = info.get("description") or ""
    declared = _MCP_NAME_RE.search(description)
    urls = info.get("project_urls") or {}
    website = info.get("home_page") or urls.get("Homepage") or urls.get("homepage")
    releases = document.get("releases") or {info.get("version"): document.get("urls") or []}
    usable = [
        (version, files) for version, files in releases.items()
        if version and files and not all(f.get("yanked") for f in files)
    ]
    usable.sort(key=lambda item: version_key(item[0]), reverse=True)
    found = []
    for version, files in usable[:max_versions]:
        package: dict[str, Any] = {
            "registryType": "pypi",
            "registryBaseUrl": base_url,
            "identifier": project,
            "version": version,
            "transport": {"type": "stdio"},
        }
        digest = _universal_sha256(files)
        if digest:
            package["fileSha256"] = digest
        doc: dict[str, Any] = {
            "name": declared.group(1) if declared else project,
            "title": project,
            "description": info.get("summary") or f"{project} (Python package)",
            "version": version,
            "tags": keywords(info),
            "packages": [package],
        }
        if website:
            doc["websiteUrl"] = website
        found.append(doc)
    return found
