"""Grants kept encrypted at rest under ``$VMCP_HOME/secrets/oauth``, or in the OS keyring.

One file per mount and grant owner (a persona, or the mount's shared service grant), each a
Fernet token (AES-128-CBC with HMAC-SHA256) of the grant's JSON. The key is
``$VMCP_OAUTH_KEY`` when set, else ``secrets/oauth.key``, made on first use and readable by
its owner only. A file that cannot be decrypted (another key, tampering) counts as no grant.

When the optional ``keyring`` package finds an OS keyring (Secret Service, macOS Keychain,
Windows Credential Locker), the grant's JSON goes there instead and its file only says so
(the files still tell who holds a grant, which a keyring cannot list).
``$VMCP_OAUTH_KEYRING`` chooses: ``auto`` (the default), ``on`` (whatever backend keyring
is configured with, ``PYTHON_KEYRING_BACKEND`` for one), ``off`` (files only).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken

from vmcp.config import vmcp_home
from vmcp.fileutil import atomic_write_text, change_stamp

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

log = logging.getLogger("vmcp.transports.http.oauth")

KEY_ENV = "VMCP_OAUTH_KEY"
KEYRING_ENV = "VMCP_OAUTH_KEYRING"
#: the keyring service grants are kept under (the user name: home, mount and owner)
KEYRING_SERVICE = "vmcp-oauth"
#: what the file of a grant kept in the keyring holds
IN_KEYRING = "in the OS keyring\n"
#: the file name standing for the shared service grant (no persona name contains "@")
SERVICE = "@service"


@dataclass(slots=True)
class Client:
    """The OAuth client vmcp is at one authorization server."""

    client_id: str
    client_secret: str | None = None
    #: ``client_secret_basic``, ``client_secret_post`` or ``none``
    auth_method: str = "none"
    #: how it came to be: ``configured``, ``metadata_document`` or ``registered``
    origin: str = "configured"
    #: the private key file of a ``private_key_jwt`` client (the key itself is not copied)
    key_file: str | None = None


@dataclass(slots=True)
class Grant:
    """What one sign-in produced for one mount and one owner."""

    #: the backend's canonical URI (the RFC 8707 ``resource``)
    resource: str
    issuer: str
    token_endpoint: str
    client: Client
    access_token: str
    refresh_token: str | None = None
    #: epoch seconds the access token expires at (None: the server did not say)
    expires_at: float | None = None
    scope: str | None = None
    revocation_endpoint: str | None = None
    obtained_at: float = field(default_factory=time.time)

    def renewal_due(self, margin: float) -> bool:
        """Whether the access token is expired or close to it: within ``margin`` seconds of
        its expiry, or past half its lifetime when that is shorter (so that a short-lived
        token is still used before it is renewed)."""
        if self.expires_at is None:
            return False
        lead = min(margin, (self.expires_at - self.obtained_at) / 2)
        return self.expires_at - time.time() <= lead

    def to_json(self) -> str:
        """The grant as JSON (secrets included: encrypt before storing)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Grant:
        """The grant :meth:`to_json` wrote."""
        data: dict[str, Any] = json.loads(text)
        data["client"] = Client(**data["client"])
        return cls(**data)


def os_keyring() -> KeyringBackend | None:
    """The keyring grants are kept in, as ``$VMCP_OAUTH_KEYRING`` says; None: files only
    (``off``, no ``keyring`` package, or for ``auto`` no OS keyring: keyring's own file and
    fail backends rank below 1)."""
    mode = os.environ.get(KEYRING_ENV, "auto").strip().lower()
    if mode == "off":
        return None
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or (mode != "on" and backend.priority < 1):
        return None
    return backend


class GrantStore:
    """Encrypted grants per mount and owner (in the OS keyring when there is one)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or vmcp_home() / "secrets"
        self._fernet: Fernet | None = None
        self._keyring: KeyringBackend | None = None
        self._keyring_found = False  # looked for yet
        #: the grant last read from each file, with that file version's stamp: a connection
        #: asks for its grant on every request, and a stat is cheaper than a decryption
        self._read: dict[Path, tuple[tuple[int, int, int], Grant]] = {}

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            key = os.environ.get(KEY_ENV)
            if not key:
                path = self.root / "oauth.key"
                if not path.exists():
                    self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
                    atomic_write_text(path, Fernet.generate_key().decode(), mode=0o600)
                key = path.read_text(encoding="utf-8").strip()
            self._fernet = Fernet(key.encode())
        return self._fernet

    def _backend(self) -> KeyringBackend | None:
        if not self._keyring_found:
            self._keyring, self._keyring_found = os_keyring(), True
        return self._keyring

    def _keyring_name(self, mount_id: str, owner: str | None) -> str:
        return f"{self.root}:{mount_id}/{owner or SERVICE}"

    def path(self, mount_id: str, owner: str | None) -> Path:
        """Where the grant of ``owner`` (None: the service grant) for ``mount_id`` lives."""
        return self.root / "oauth" / mount_id / f"{owner or SERVICE}.grant"

    def load(self, mount_id: str, owner: str | None) -> Grant | None:
        """The stored grant, or None (none, or not readable with this key)."""
        path = self.path(mount_id, owner)
        try:
            stamp = change_stamp(path.stat())
            cached = self._read.get(path)
            if stamp is not None and cached is not None and cached[0] == stamp:
                return cached[1]
            token = path.read_bytes()
        except FileNotFoundError:
            self._read.pop(path, None)
            return None
        try:
            if token.decode(errors="replace") == IN_KEYRING:
                text = self._from_keyring(mount_id, owner)
                if text is None:
                    return None
            else:
                text = self._cipher().decrypt(token).decode()
            grant = Grant.from_json(text)
        except (InvalidToken, ValueError, TypeError, KeyError):
            return None
        if stamp is not None:
            self._read[path] = (stamp, grant)
        return grant

    def save(self, mount_id: str, owner: str | None, grant: Grant) -> None:
        """Store (or replace) a grant, atomically, readable by its owner only."""
        path = self.path(mount_id, owner)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        backend = self._backend()
        if backend is not None:
            from keyring.errors import KeyringError

            try:
                backend.set_password(KEYRING_SERVICE, self._keyring_name(mount_id, owner),
                                     grant.to_json())
            except KeyringError as exc:  # a locked or refusing keyring: the file, then
                log.warning("the OS keyring refused a grant (%s); kept in a file", exc)
            else:
                atomic_write_text(path, IN_KEYRING, mode=0o600)
                return
        atomic_write_text(path, self._cipher().encrypt(grant.to_json().encode()).decode(),
                          mode=0o600)

    def _from_keyring(self, mount_id: str, owner: str | None) -> str | None:
        backend = self._backend()
        if backend is None:
            return None
        from keyring.errors import KeyringError

        try:
            return backend.get_password(KEYRING_SERVICE, self._keyring_name(mount_id, owner))
        except KeyringError as exc:
            log.warning("cannot read a grant from the OS keyring: %s", exc)
            return None

    def delete(self, mount_id: str, owner: str | None) -> bool:
        """Forget a grant (in the keyring too); False when there was none."""
        path = self.path(mount_id, owner)
        try:
            kept_in_keyring = path.read_bytes().decode(errors="replace") == IN_KEYRING
            path.unlink()
        except FileNotFoundError:
            return False
        backend = self._backend() if kept_in_keyring else None
        if backend is not None:
            from keyring.errors import KeyringError

            try:
                backend.delete_password(KEYRING_SERVICE, self._keyring_name(mount_id, owner))
            except KeyringError as exc:
                log.warning("the OS keyring kept a forgotten grant: %s", exc)
        return True

    def owners(self, mount_id: str) -> list[str | None]:
        """Who holds a grant for ``mount_id`` (None: the service grant)."""
        folder = self.root / "oauth" / mount_id
        if not folder.is_dir():
            return []
        return sorted((None if p.stem == SERVICE else p.stem for p in folder.glob("*.grant")),
                      key=lambda owner: owner or "")
