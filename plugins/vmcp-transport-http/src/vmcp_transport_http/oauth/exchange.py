"""RFC 8693 token exchange: each caller's own token traded for a backend token.

A mount with ``grant = "token_exchange"`` gives every front session a connection of its own
(``isolation = "session"``). That connection's bearer is obtained by presenting the caller's
token, the one the front's auth driver verified, as the ``subject_token`` at the
authorization server's token endpoint, with the backend as ``resource``: the caller's token
goes to the authorization server only, never to the backend. Backend tokens are kept in memory
only (they stand for callers, who come and go), per mount and caller subject, until they
expire; a new session of the same subject reuses its token meanwhile. An exchange presents
the newest token a session of that subject brought, so that an older session whose own token
has expired since it began is served on the strength of a newer one. What discovery found
for a backend is kept too (one token request per exchange, not three), and found again after
a failed exchange.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from vmcp.auth.base import Principal
from vmcp.config import MountConfig, OAuthSettings
from vmcp_transport_http.oauth.authorizer import REFRESH_MARGIN
from vmcp_transport_http.oauth.client import TokenError, client_identity, exchange_token
from vmcp_transport_http.oauth.contract import SignInRequired
from vmcp_transport_http.oauth.discovery import (
    AuthorizationTarget,
    Challenge,
    DiscoveryError,
    discover,
)
from vmcp_transport_http.oauth.store import Grant

#: the exchanged tokens of the process, by (mount id, caller subject)
_tokens: dict[tuple[str, str], Grant] = {}
_locks: dict[tuple[str, str], asyncio.Lock] = {}
#: the newest subject token a connection of each (mount id, caller subject) was opened with
_subject_tokens: dict[tuple[str, str], str] = {}
#: the authorization target of each backend URL exchanged for
_targets: dict[str, AuthorizationTarget] = {}


def forget_expired(now: float | None = None) -> None:
    """Drop exchanged tokens past their expiry (so callers long gone leave nothing)."""
    now = time.time() if now is None else now
    for key, grant in list(_tokens.items()):
        if grant.expires_at is not None and grant.expires_at <= now:
            del _tokens[key]
            _locks.pop(key, None)
            _subject_tokens.pop(key, None)


class ExchangeAuthorizer:
    """Supplies ``Authorization`` for the connection of one caller of a token exchange mount
    (the interface of :class:`~vmcp_transport_http.oauth.authorizer.BackendAuthorizer`)."""

    def __init__(self, mount: MountConfig, caller: Principal | None) -> None:
        """:raises SignInRequired: the caller presented no token the gateway verified."""
        assert mount.oauth is not None and mount.url is not None
        if caller is None or caller.credential is None:
            raise SignInRequired(
                f"mount {mount.id!r} exchanges each caller's own token (RFC 8693), and this "
                "caller presented none: authenticate to vmcp with a bearer token ([auth] "
                'driver = "jwt")')
        self.mount_id = mount.id
        self.url = mount.url
        self.settings: OAuthSettings = mount.oauth
        self.subject = caller.name
        self._subject_token = caller.credential
        self._key = (mount.id, caller.name)
        self._lock = _locks.setdefault(self._key, asyncio.Lock())
        _subject_tokens[self._key] = caller.credential

    async def header(self, http: aiohttp.ClientSession) -> str:
        """The ``Authorization`` value to send now (the exchange goes over ``http``)."""
        grant = _tokens.get(self._key)
        if grant is None or grant.renewal_due(REFRESH_MARGIN):
            grant = await self._exchange(http, grant.access_token if grant else None)
        return f"Bearer {grant.access_token}"

    async def rejected(self, http: aiohttp.ClientSession, status: int,
                       www_authenticate: str | None, sent: str) -> None:
        """The backend refused ``sent``: exchange the caller's token again (once).

        :raises SignInRequired: the backend wants a scope, or the exchange is refused.
        """
        challenge = Challenge.parse(www_authenticate)
        if challenge.error == "insufficient_scope":
            needed = challenge.scope or challenge.error_description or "more scope"
            raise SignInRequired(f"mount {self.mount_id!r}: the backend refuses the token "
                                 f"exchanged for {self.subject!r} for lack of {needed!r}: add "
                                 "it to the mount's oauth.scopes")
        await self._exchange(http, sent.removeprefix("Bearer "))

    def refused(self, status: int) -> SignInRequired:
        """The backend refused even a freshly exchanged token (HTTP ``status``)."""
        return SignInRequired(f"mount {self.mount_id!r}: the backend refuses the token "
                              f"exchanged for {self.subject!r} (HTTP {status})")

    async def _exchange(self, http: aiohttp.ClientSession, stale: str | None) -> Grant:
        async with self._lock:
            grant = _tokens.get(self._key)
            if (grant is not None and grant.access_token != stale
                    and not grant.renewal_due(REFRESH_MARGIN)):
                return grant  # exchanged meanwhile for another session of this caller
            subject_token = _subject_tokens.get(self._key, self._subject_token)
            try:
                target = _targets.get(self.url) or await discover(http, self.url, None)
                _targets[self.url] = target
                client = await client_identity(http, self.settings, target, None)
                scope = " ".join(self.settings.scopes) or target.scope
                grant = await exchange_token(http, target, client, subject_token,
                                             self.settings.subject_token_type,
                                             self.settings.audience, scope)
            except (DiscoveryError, TokenError) as exc:
                _targets.pop(self.url, None)
                if (isinstance(exc, TokenError) and exc.error == "invalid_grant"
                        and _subject_tokens.get(self._key) == subject_token):
                    del _subject_tokens[self._key]  # refused: no later exchange presents it
                raise SignInRequired(f"mount {self.mount_id!r}: cannot exchange the token of "
                                     f"caller {self.subject!r} for a backend token: {exc}"
                                     ) from exc
            forget_expired()
            _tokens[self._key] = grant
            return grant
