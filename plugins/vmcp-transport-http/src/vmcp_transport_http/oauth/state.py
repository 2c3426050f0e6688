"""The sign-in state of protected mounts, for people to read: ``vmcp auth status``, and
``vmcp list``, ``info`` and ``status`` through the ``vmcp_sign_ins`` hook. No secret is ever
part of it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from vmcp.config import MountConfig
from vmcp.persona import PersonaStore
from vmcp_transport_http.oauth.store import Grant, GrantStore

#: seconds before its expiry at which a grant that cannot renew itself counts as expiring
EXPIRING_WITHIN = 3600.0
#: the states in which a person has to sign in (soon)
NEEDS_PERSON = frozenset({"expiring", "expired", "signed-out", "unreadable"})


def describe(grant: Grant, now: float | None = None) -> dict[str, Any]:
    """A grant's state, expiry, scope, issuer and client origin."""
    now = time.time() if now is None else now
    expires = None
    state = "valid"
    if grant.expires_at is not None:
        expires = datetime.fromtimestamp(grant.expires_at, UTC).isoformat(timespec="seconds")
        if grant.expires_at <= now:
            state = "expired, refreshable" if grant.refresh_token else "expired"
        elif grant.refresh_token is None and grant.expires_at - now <= EXPIRING_WITHIN:
            state = "expiring"
    return {"state": state, "expires": expires, "scope": grant.scope, "issuer": grant.issuer,
            "client": grant.client.origin}


def sign_ins(mount: MountConfig, store: GrantStore,
             personas: PersonaStore | None = None) -> list[dict[str, Any]]:
    """One row per grant owner of an OAuth ``mount``: the service grant, and for a mount with
    per-persona grants every persona (signed in or not) and every other holder of a grant.
    A client-credentials mount's service grant is obtained by the gateway itself, so it is
    ``signed-out`` only until first used; so is a token exchange mount's, whose callers
    hold no grants (their tokens are exchanged, and kept in memory only)."""
    assert mount.oauth is not None
    owners: list[str | None] = [None]
    if mount.oauth.grants == "persona" and mount.oauth.grant != "token_exchange":
        known = (personas or PersonaStore.default()).names()
        owners += sorted({*known, *(o for o in store.owners(mount.id) if o is not None)})
    rows = []
    for owner in owners:
        row: dict[str, Any] = {"persona": owner, "state": "signed-out", "expires": None}
        if store.path(mount.id, owner).exists():
            grant = store.load(mount.id, owner)
            row.update(describe(grant) if grant is not None else {"state": "unreadable"})
        rows.append(row)
    return rows
