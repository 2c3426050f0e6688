"""Logging set-up: everything goes to stderr or the log file, never to stdout.

Every record passes a :class:`RedactionFilter` first, so secrets never reach the log:
``Authorization`` header values, bearer tokens, ``token=``/``password:``-style values, and the
literal values of every mount's ``env`` and ``headers`` (expanded, which covers the secret
variables an installed server refers to as ``${VAR}``). A log file rotates by size.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from vmcp.config import LoggingSettings, VmcpConfig, expand_vars

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"
#: literal secrets shorter than this are not masked (they would garble every line)
MIN_SECRET_LENGTH = 4

_AUTH_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization)(\\?[\"']?\s*[:=]\s*\\?[\"']?)([^\"'\\\r\n,}]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*")
_SECRET_KEY = re.compile(
    r"(?i)\b([\w-]*(?:token|secret|passw(?:or)?d|api[_-]?key|credentials?))"
    r"(\\?[\"']?\s*[:=]\s*\\?[\"']?)([^\s\"'\\,}&]+)")
#: key names that look secret but carry protocol bookkeeping
_NOT_SECRET = frozenset({"progresstoken", "nextcursor"})


class Redactor:
    """Masks secrets in text: known literal values and secret-looking patterns."""

    def __init__(self) -> None:
        self._literals: tuple[str, ...] = ()

    def set_secrets(self, values: Iterable[str]) -> None:
        """Mask these literal values (and their JSON-escaped forms) from now on."""
        found: set[str] = set()
        for value in values:
            if len(value) >= MIN_SECRET_LENGTH:
                found.add(value)
                found.add(json.dumps(value)[1:-1])
        # Longest first, so a secret containing another is masked whole.
        self._literals = tuple(sorted(found, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for literal in self._literals:
            if literal in text:
                text = text.replace(literal, MASK)
        text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
        text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
        return _SECRET_KEY.sub(_mask_key, text)


def _mask_key(match: re.Match[str]) -> str:
    if match.group(1).lower() in _NOT_SECRET or match.group(3) == MASK:
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{MASK}"


def config_secrets(config: VmcpConfig) -> list[str]:
    """Every mount's ``env`` and ``headers`` values, as written and as expanded."""
    values: list[str] = []
    for mount in config.servers.values():
        for raw in [*mount.env.values(), *mount.headers.values()]:
            values.append(raw)
            values.append(expand_vars(raw))
    return values


class RedactionFilter(logging.Filter):
    """Rewrites each record's message (and exception text) with its secrets masked."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; never drops it."""
        record.msg = self.redactor(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info or record.exc_text:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, ensure_ascii=False)


#: the redactor of vmcp's log handler; ``configure_logging`` refreshes its secrets
redactor = Redactor()


def configure_logging(
    settings: LoggingSettings, level: str | None = None, secrets: Iterable[str] = ()
) -> None:
    """Send vmcp's log where the configuration says, at its level (or ``level``).

    :param secrets: literal values that must never appear (see :func:`config_secrets`).
    """
    if settings.file:
        # Imported only for a log file: logging.handlers imports pickle, socket and more.
        from logging.handlers import RotatingFileHandler

        path = Path(settings.file).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = RotatingFileHandler(
            path, maxBytes=settings.max_bytes, backupCount=settings.backup_count,
            encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    formatter = JsonLinesFormatter() if settings.json_lines else logging.Formatter(_FORMAT)
    handler.setFormatter(formatter)
    redactor.set_secrets(secrets)
    handler.addFilter(RedactionFilter(redactor))
    root = logging.getLogger("vmcp")
    for old in root.handlers:
        old.close()
    root.handlers[:] = [handler]
    root.setLevel((level or settings.level).upper())
    root.propagate = False
