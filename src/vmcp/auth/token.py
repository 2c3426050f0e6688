"""The built-in ``token`` auth driver: bearer tokens minted by ``vmcp token create``.

Each presented token is hashed and looked up in the token file; the file is re-read when it
changes, so ``vmcp token create`` and ``vmcp token revoke`` take effect at once on a running
gateway. The principal's persona is the one the token was created for.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vmcp.auth.base import AuthProvider, Principal
from vmcp.auth.bearer import bearer_token
from vmcp.auth.tokens import TokenRecord, TokenStore, TokenStoreError, hash_token
from vmcp.fileutil import change_stamp

log = logging.getLogger("vmcp.auth")


class TokenAuth(AuthProvider):
    """Bearer tokens from the token store.

    Settings (``[auth]``): ``tokens_file`` (default ``$VMCP_HOME/config/tokens.json``).
    """

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        path = settings.get("tokens_file")
        self.store = TokenStore(Path(path)) if path else TokenStore.default()
        self._stamp: tuple[int, int, int] | None = None
        self._by_hash: dict[str, TokenRecord] = {}
        self._broken: str | None = None

    def _current(self) -> dict[str, TokenRecord]:
        stamp: tuple[int, int, int] | None
        try:
            stamp = change_stamp(self.store.path.stat())
        except FileNotFoundError:
            stamp = (0, 0, 0)
        if stamp is None or stamp != self._stamp:
            self._stamp = stamp
            try:
                self._by_hash = {r.sha256: r for r in self.store.load()}
                self._broken = None
            except TokenStoreError as exc:
                self._by_hash = {}
                self._broken = str(exc)
        return self._by_hash

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The principal of a valid, unexpired, unrevoked token; else a 401."""
        token = bearer_token(headers)
        if token is None:
            raise self.refuse(headers, "a bearer token is required", error=None)
        records = self._current()
        if self._broken is not None:
            log.error("refusing every token: %s", self._broken)
            raise self.refuse(headers, "tokens cannot be checked now")
        record = records.get(hash_token(token))
        if record is None:
            raise self.refuse(headers, "invalid or revoked token")
        if record.expired():
            raise self.refuse(headers, "the token has expired")
        return Principal(f"token:{record.id}", record.persona)
