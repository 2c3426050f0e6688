"""Writing the trail (a rotated JSON-lines file, written off the event loop) and reading it
back, rotated files included, for ``vmcp audit``."""

from __future__ import annotations

import json
import logging
import queue
from collections.abc import Iterator
from datetime import datetime
from logging.handlers import QueueHandler, QueueListener, RotatingFileHandler
from pathlib import Path
from typing import Any

from vmcp.config import AuditSettings


class TrailWriter:
    """Appends records to the trail file; a background thread does the file I/O."""

    def __init__(self, settings: AuditSettings) -> None:
        path = settings.file()
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=settings.max_bytes,
                                      backupCount=settings.backup_count, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._enqueue = QueueHandler(self._queue)
        self._listener = QueueListener(self._queue, handler)
        self._handler = handler
        self._listener.start()

    def write(self, record: dict[str, Any]) -> None:
        """Queue one record (never blocks)."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        self._enqueue.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))

    def close(self) -> None:
        """Write what is queued and close the file."""
        self._listener.stop()
        self._handler.close()


def trail_files(path: Path) -> list[Path]:
    """The trail's files, oldest first: ``path.N`` ... ``path.1``, then ``path``."""
    rotated = []
    for candidate in path.parent.glob(path.name + ".*"):
        suffix = candidate.name[len(path.name) + 1:]
        if suffix.isdigit():
            rotated.append((int(suffix), candidate))
    return [p for _, p in sorted(rotated, reverse=True)] + ([path] if path.exists() else [])


def read_records(path: Path, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Every record of the trail, oldest first (lines that are not JSON objects skipped);
    of ``path`` itself only its first ``limit`` bytes when given."""
    for file in trail_files(path):
        with file.open("rb") as handle:
            data = handle.read(limit if limit is not None and file == path else -1)
        for line in data.decode("utf-8", errors="replace").splitlines():
            record = parse_line(line)
            if record is not None:
                yield record


def parse_line(line: str) -> dict[str, Any] | None:
    """One record, or None for a line that is not a JSON object (a torn or foreign line)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def matches(record: dict[str, Any], *, persona: str | None = None, tool: str | None = None,
            mount: str | None = None, since: datetime | None = None) -> bool:
    """True when the record passes every filter given."""
    if persona is not None and record.get("persona") != persona:
        return False
    if tool is not None and record.get("tool") != tool:
        return False
    if mount is not None and record.get("mount") != mount:
        return False
    if since is not None:
        try:
            if datetime.fromisoformat(str(record.get("time"))) < since:
                return False
        except ValueError:
            return False
    return True
