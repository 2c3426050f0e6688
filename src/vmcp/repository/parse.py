"""Turning what a source returned into validated manifests, with a report of the rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vmcp.repository.base import RawManifest
from vmcp.repository.folder_format import server_json_from_folder
from vmcp.repository.manifest import ManifestError, ServerManifest, decode_json, manifest_from_data


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    """A valid manifest with the document to store and where it came from."""

    manifest: ServerManifest
    document: dict[str, Any]
    location: str
    readme: str


@dataclass(frozen=True, slots=True)
class ManifestProblem:
    """A manifest that was skipped, with its source, location and the reason."""

    source: str
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.location}: {self.message}"


def parse_manifest(raw: RawManifest) -> ParsedManifest:
    """Validate a raw manifest of either kind (``server.json`` or ``install.json``).

    :raises ManifestError: the manifest is invalid.
    """
    if raw.error:
        raise ManifestError(raw.error)
    data = decode_json(raw.text)
    if raw.kind == "install.json":
        data = server_json_from_folder(data, raw.readme, raw.location)
    elif raw.kind != "server.json":
        raise ManifestError(f"unknown manifest kind {raw.kind!r}")
    return ParsedManifest(manifest_from_data(data), data, raw.location, raw.readme)


def parse_all(
    source: str, raws: list[RawManifest]
) -> tuple[list[ParsedManifest], list[ManifestProblem]]:
    """Validate every raw manifest of one source; invalid ones and duplicates become problems."""
    parsed: list[ParsedManifest] = []
    problems: list[ManifestProblem] = []
    seen: dict[tuple[str, str], str] = {}
    for raw in raws:
        try:
            item = parse_manifest(raw)
        except ManifestError as exc:
            problems.append(ManifestProblem(source, raw.location, str(exc)))
            continue
        key = (item.manifest.name, item.manifest.version)
        if key in seen:
            problems.append(ManifestProblem(
                source, raw.location, f"{key[0]} {key[1]} is already defined at {seen[key]}"
            ))
            continue
        seen[key] = raw.location
        parsed.append(item)
    return parsed, problems
