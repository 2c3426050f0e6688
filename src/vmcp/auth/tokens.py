"""The bearer-token store behind the ``token`` auth driver: ``$VMCP_HOME/config/tokens.json``.

A token is shown once, when created; the store keeps only its SHA-256 hash, with an id (to
list and revoke it), a label, the persona it grants and its expiry. Writes are atomic, each
change holds the file's lock from its read to its write (no lost updates between processes), and
the file is readable by its owner only. A file that cannot be read is reported as
:class:`TokenStoreError`, never treated as empty.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vmcp.config import vmcp_home
from vmcp.fileutil import atomic_write_text, state_lock

TOKEN_PREFIX = "vmcp_"
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class TokenStoreError(Exception):
    """The token file is unreadable or invalid, or an id is unknown; the message says which."""


def parse_duration(text: str) -> timedelta | None:
    """``30d``, ``12h``, ``45m``, ``90s``, ``2w`` -> a timedelta; ``never`` -> None.

    :raises ValueError: anything else.
    """
    if text.strip().lower() == "never":
        return None
    match = _DURATION_RE.fullmatch(text.lower())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"invalid duration {text!r}: use e.g. 30d, 12h, 45m, 2w or never")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token (what the store keeps)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """One stored token (never the token itself)."""

    id: str
    name: str
    persona: str
    sha256: str
    created: datetime
    expires: datetime | None

    def expired(self, now: datetime | None = None) -> bool:
        """True once the expiry has passed."""
        return self.expires is not None and (now or datetime.now(UTC)) >= self.expires

    def to_json(self) -> dict[str, Any]:
        """The record as stored."""
        data = asdict(self)
        data["created"] = self.created.isoformat()
        data["expires"] = self.expires.isoformat() if self.expires else None
        return data

    @classmethod
    def from_json(cls, data: Any) -> TokenRecord:
        """Read one stored record; :class:`TokenStoreError` when malformed."""
        try:
            return cls(
                id=str(data["id"]), name=str(data.get("name", "")), persona=str(data["persona"]),
                sha256=str(data["sha256"]), created=_time(data["created"]),  # type: ignore[arg-type]
                expires=_time(data.get("expires")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TokenStoreError(f"malformed token entry: {exc!r}") from exc


class TokenStore:
    """The token file: create, list, revoke, and look up by presented token."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def default(cls) -> TokenStore:
        """The store at ``$VMCP_HOME/config/tokens.json``."""
        return cls(vmcp_home() / "config" / "tokens.json")

    def load(self) -> list[TokenRecord]:
        """Every stored token (an absent file holds none).

        :raises TokenStoreError: the file is unreadable or invalid.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise TokenStoreError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        try:
            data = json.loads(text)
            entries = data["tokens"]
            if not isinstance(entries, list):
                raise TypeError("'tokens' is not a list")
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise TokenStoreError(f"{self.path}: not a token file: {exc}") from exc
        try:
            return [TokenRecord.from_json(entry) for entry in entries]
        except TokenStoreError as exc:
            raise TokenStoreError(f"{self.path}: {exc}") from exc

    def _write(self, records: list[TokenRecord]) -> None:
        text = json.dumps({"tokens": [r.to_json() for r in records]}, indent=2) + "\n"
        atomic_write_text(self.path, text, mode=0o600)

    def create(
        self, persona: str, expires_in: timedelta | None, name: str = ""
    ) -> tuple[TokenRecord, str]:
        """Mint a token for ``persona``; return its record and the token (shown once)."""
        with state_lock(self.path):
            return self._create(persona, expires_in, name)

    def _create(
        self, persona: str, expires_in: timedelta | None, name: str
    ) -> tuple[TokenRecord, str]:
        records = self.load()
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC).replace(microsecond=0)
        taken = {r.id for r in records}
        token_id = secrets.token_hex(4)
        while token_id in taken:
            token_id = secrets.token_hex(4)
        record = TokenRecord(
            id=token_id, name=name, persona=persona, sha256=hash_token(token), created=now,
            expires=now + expires_in if expires_in is not None else None,
        )
        self._write([*records, record])
        return record, token

    def revoke(self, token_id: str) -> TokenRecord:
        """Remove a token; it stops working at once.

        :raises TokenStoreError: no token has this id.
        """
        with state_lock(self.path):
            records = self.load()
            found = [r for r in records if r.id == token_id]
            if not found:
                raise TokenStoreError(f"unknown token id {token_id!r}")
            self._write([r for r in records if r.id != token_id])
        return found[0]
