"""The local search index: every synced manifest, in SQLite with an FTS5 table for search.

One row per (source, server name, version). A sync replaces one source's rows in a single
transaction, so a reader sees the old set or the new one. Search covers the newest version
of each server in each source and ranks with BM25, weighting the name above the title, the
tags and the description.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmcp.repository.manifest import ServerManifest, manifest_from_data
from vmcp.repository.parse import ParsedManifest
from vmcp.repository.versions import version_key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifests (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    short_name TEXT NOT NULL,
    version TEXT NOT NULL,
    is_latest INTEGER NOT NULL DEFAULT 0,
    location TEXT NOT NULL,
    document TEXT NOT NULL,
    readme TEXT NOT NULL DEFAULT '',
    synced_at REAL NOT NULL,
    UNIQUE (source, name, version)
);
CREATE TABLE IF NOT EXISTS sources (
    source TEXT PRIMARY KEY,
    synced_at REAL,
    manifests INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX IF NOT EXISTS manifests_short ON manifests (short_name);
CREATE VIRTUAL TABLE IF NOT EXISTS manifests_fts USING fts5(
    name, title, description, tags, tokenize = 'unicode61'
);
"""
#: BM25 column weights: name, title, description, tags
_WEIGHTS = (10.0, 6.0, 1.0, 4.0)
_WORD_RE = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One indexed manifest."""

    source: str
    name: str
    version: str
    is_latest: bool
    location: str
    document: dict[str, Any]
    readme: str
    synced_at: float

    @property
    def manifest(self) -> ServerManifest:
        """The validated model of the stored document."""
        return manifest_from_data(self.document)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """The outcome of a source's last sync."""

    source: str
    synced_at: float | None
    manifests: int
    skipped: int
    error: str | None


class SearchIndex:
    """The index database at ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.executescript(_SCHEMA)
            with conn:
                yield conn
        finally:
            conn.close()

    def replace_source(self, source: str, items: list[ParsedManifest], skipped: int = 0) -> None:
        """Make ``items`` the whole content of ``source``, atomically.

        :param skipped: how many invalid manifests the sync left out, for ``repo list``.
        """
        now = time.time()
        latest: dict[str, str] = {}
        for item in items:
            name, version = item.manifest.name, item.manifest.version
            if name not in latest or version_key(version) > version_key(latest[name]):
                latest[name] = version
        with self._connect() as conn:
            self._delete(conn, source)
            for item in items:
                m = item.manifest
                cursor = conn.execute(
                    "INSERT INTO manifests (source, name, short_name, version, is_latest,"
                    " location, document, readme, synced_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (source, m.name, m.short_name.lower(), m.version,
                     int(latest[m.name] == m.version), item.location,
                     json.dumps(item.document), item.readme, now),
                )
                conn.execute(
                    "INSERT INTO manifests_fts (rowid, name, title, description, tags)"
                    " VALUES (?,?,?,?,?)",
                    (cursor.lastrowid, m.name, m.title or "", m.description, " ".join(m.tags)),
                )
            conn.execute(
                "INSERT OR REPLACE INTO sources (source, synced_at, manifests, skipped, error)"
                " VALUES (?, ?, ?, ?, NULL)",
                (source, now, len(items), skipped),
            )

    def record_failure(self, source: str, error: str) -> None:
        """Note that syncing ``source`` failed; its previous manifests stay searchable."""
        with self._connect() as conn:
            conn.execute("INSERT OR IGNORE INTO sources (source) VALUES (?)", (source,))
            conn.execute("UPDATE sources SET error = ? WHERE source = ?", (error, source))

    def remove_source(self, source: str) -> None:
        """Forget every manifest of ``source``."""
        with self._connect() as conn:
            self._delete(conn, source)

    @staticmethod
    def _delete(conn: sqlite3.Connection, source: str) -> None:
        conn.execute(
            "DELETE FROM manifests_fts WHERE rowid IN (SELECT id FROM manifests WHERE source = ?)",
            (source,),
        )
        conn.execute("DELETE FROM manifests WHERE source = ?", (source,))
        conn.execute("DELETE FROM sources WHERE source = ?", (source,))

    def search(self, query: str, limit: int = 20) -> list[IndexEntry]:
        """The best matches for ``query``, best first, newest version of each server.

        Every word must match (as a prefix); when nothing does, any word may.
        """
        words = [w.lower() for w in _WORD_RE.findall(query)]
        if not words:
            return []
        terms = ['"' + w.replace('"', "") + '"*' for w in words]
        for joiner in (" AND ", " OR "):
            found = self._match(joiner.join(terms), limit)
            if found or len(terms) == 1:
                return found
        return []

    def _match(self, expression: str, limit: int) -> list[IndexEntry]:
        weights = ", ".join(str(w) for w in _WEIGHTS)
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT m.source, m.name, m.version, m.is_latest, m.location, m.document,"
                " m.readme, m.synced_at FROM manifests_fts f JOIN manifests m ON m.id = f.rowid"
                f" WHERE manifests_fts MATCH ? AND m.is_latest = 1"
                f" ORDER BY bm25(manifests_fts, {weights}), m.name, m.source LIMIT ?",
                (expression, limit),
            ).fetchall()
        return [_entry(row) for row in rows]

    def lookup(self, name: str, source: str | None = None) -> list[IndexEntry]:
        """Every version of the servers called ``name`` (full name, the part after '/', or
        the name of a package it installs, as users know it: ``mcp-server-git``).

        An exact full-name match wins over short-name matches, and those over package names.
        Newest versions come first.
        """
        package = ("EXISTS (SELECT 1 FROM json_each(document, '$.packages') AS p"
                   " WHERE json_extract(p.value, '$.identifier') = ?)")
        with self._connect() as conn:
            for where, value in (("name = ?", name), ("short_name = ?", name.lower()),
                                 (package, name)):
                sql = (
                    "SELECT source, name, version, is_latest, location, document, readme,"
                    f" synced_at FROM manifests WHERE {where}"
                )
                params: list[Any] = [value]
                if source is not None:
                    sql += " AND source = ?"
                    params.append(source)
                rows = conn.execute(sql, params).fetchall()
                if rows:
                    entries = [_entry(row) for row in rows]
                    return sorted(entries, key=lambda e: version_key(e.version), reverse=True)
        return []

    def status(self) -> dict[str, SourceStatus]:
        """What the last sync of each source brought, by source name."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT source, synced_at, manifests, skipped, error FROM sources"
            ).fetchall()
        return {row[0]: SourceStatus(*row) for row in rows}


def _entry(row: tuple[Any, ...]) -> IndexEntry:
    source, name, version, is_latest, location, document, readme, synced_at = row
    return IndexEntry(source, name, version, bool(is_latest), location,
                      json.loads(document), readme, synced_at)
