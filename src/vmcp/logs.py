"""Logging set-up: everything goes to stderr or the log file, never to stdout."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from vmcp.config import LoggingSettings

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: LoggingSettings, level: str | None = None) -> None:
    """Send vmcp's log where the configuration says, at its level (or ``level``)."""
    if settings.file:
        path = Path(settings.file).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    formatter = JsonLinesFormatter() if settings.json_lines else logging.Formatter(_FORMAT)
    handler.setFormatter(formatter)
    root = logging.getLogger("vmcp")
    root.handlers[:] = [handler]
    root.setLevel((level or settings.level).upper())
    root.propagate = False
