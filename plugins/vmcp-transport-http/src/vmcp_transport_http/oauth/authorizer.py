"""The bearer token one backend connection sends, kept fresh.

A connection serves one grant owner: a persona (an isolated ``persona`` connection of a
mount with per-persona grants) or the mount's shared service grant (a client credentials
grant for the lists of a token exchange mount, whose callers' own connections use
:mod:`vmcp_transport_http.oauth.exchange`). The access token is refreshed shortly before it
expires and again when the backend answers 401; a refused refresh, or no grant at all, fails
the request with the command that signs in; the :class:`SignInRequired` also offers the
sign-in itself (its URL, then the wait for the grant) for the gateway to hand to the caller's
client. A connection is not made without a grant (``oauth.choice.authorizer_for`` refuses),
and one whose grant is refused for good ends. A client-credentials mount obtains its grant
itself. Refreshes of one grant are serialized across every connection of the process, and a
token another connection already renewed is picked up from the store instead of being
refreshed twice.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

import aiohttp

from vmcp.config import MountConfig, OAuthSettings
from vmcp_transport_http.oauth.client import (
    TOKEN_EXCHANGE,
    TokenError,
    client_credentials,
    client_identity,
    refresh,
)
from vmcp_transport_http.oauth.contract import SignInRequired
from vmcp_transport_http.oauth.discovery import Challenge, DiscoveryError, discover
from vmcp_transport_http.oauth.flow import begin
from vmcp_transport_http.oauth.store import Grant, GrantStore

log = logging.getLogger("vmcp.transports.http.oauth")

#: seconds before expiry at which an access token is renewed
REFRESH_MARGIN = 60.0
_locks: dict[tuple[str, str, str], asyncio.Lock] = {}


def login_command(mount_id: str, owner: str | None, scope: str | None = None) -> str:
    """The command that signs ``owner`` in to ``mount_id``."""
    command = f"vmcp auth login {mount_id}"
    if owner is not None:
        command += f" --persona {owner}"
    if scope:
        command += f" --scope '{scope}'"
    return command


def grant_owner(mount: MountConfig, scope: tuple[str, str] | None) -> str | None:
    """Whose grant a connection with ``scope`` uses: its persona's when the mount keeps
    grants per persona and the connection serves one persona, else the service grant."""
    assert mount.oauth is not None
    if mount.oauth.grants == "persona" and scope is not None and scope[0] == "persona":
        return scope[1]
    return None


class BackendAuthorizer:
    """Supplies ``Authorization`` for one connection and reacts to the backend's refusals."""

    def __init__(self, mount: MountConfig, owner: str | None, store: GrantStore) -> None:
        assert mount.oauth is not None and mount.url is not None
        self.mount = mount
        self.mount_id = mount.id
        self.url = mount.url
        self.settings: OAuthSettings = mount.oauth
        self.owner = owner
        self.store = store
        self._lock = _locks.setdefault((str(store.root), mount.id, owner or ""), asyncio.Lock())

    def _who(self) -> str:
        return f"persona {self.owner!r}" if self.owner is not None else "the service grant"

    def check(self) -> None:
        """Fail at once when a person must sign in first (nothing is sent without a grant;
        one that cannot be renewed ends the connection when it is used, see
        :attr:`~vmcp.transports.signin.SignInNeeded.lost`)."""
        if (self.settings.grant == "authorization_code"
                and self.store.load(self.mount_id, self.owner) is None):
            raise self._sign_in("has not signed in", lost=True)

    def _sign_in(self, why: str, scope: str | None = None, shown_scope: str | None = None,
                 lost: bool = False) -> SignInRequired:
        """The refusal naming the command that signs in (for ``scope``, else a placeholder
        ``shown_scope``), offering the sign-in itself; ``lost``: no grant is left that a
        connection could use."""
        return SignInRequired(
            f"mount {self.mount_id!r}: {self._who()} {why}; sign in with "
            f"`{login_command(self.mount_id, self.owner, scope or shown_scope)}`",
            start=partial(begin, self.mount, self.owner, self.store, scope,
                          self.settings.sign_in_timeout),
            key=(str(self.store.root), self.mount_id, self.owner),
            timeout=self.settings.sign_in_timeout, lost=lost)

    async def header(self, http: aiohttp.ClientSession) -> str:
        """The ``Authorization`` value to send now (token requests go over ``http``)."""
        grant = self.store.load(self.mount_id, self.owner)
        if grant is None or grant.renewal_due(REFRESH_MARGIN):
            grant = await self._renew(http, grant.access_token if grant else None)
        return f"Bearer {grant.access_token}"

    async def rejected(self, http: aiohttp.ClientSession, status: int,
                       www_authenticate: str | None, sent: str) -> None:
        """The backend refused ``sent`` (the ``Authorization`` value) with ``status``: renew
        the grant so that the request can be retried once.

        :raises SignInRequired: the grant cannot be renewed, or a larger scope is needed.
        """
        challenge = Challenge.parse(www_authenticate)
        if challenge.error == "insufficient_scope":
            needed = (f"the scope {challenge.scope!r}" if challenge.scope
                      else f"more scope ({challenge.error_description or 'insufficient_scope'})")
            if self._holds(challenge.scope):
                # the step-up limit: a sign-in for a scope the grant already has cannot help
                grant = ("the service grant" if self.owner is None
                         else f"the grant of persona {self.owner!r}")
                raise SignInRequired(f"mount {self.mount_id!r}: the backend refuses {grant} "
                                     f"for lack of {needed}, which it holds already; signing "
                                     "in again would not help")
            if self.settings.grant != "authorization_code":
                raise SignInRequired(f"mount {self.mount_id!r}: the service grant lacks "
                                     f"{needed}: add it to the mount's oauth.scopes")
            raise self._sign_in(f"needs {needed}", challenge.scope, shown_scope="SCOPE")
        await self._renew(http, sent.removeprefix("Bearer "))

    def _holds(self, scope: str | None) -> bool:
        """Whether the current grant was given every scope of ``scope``."""
        grant = self.store.load(self.mount_id, self.owner)
        if not scope or grant is None or grant.scope is None:
            return False
        return set(scope.split()) <= set(grant.scope.split())

    def refused(self, status: int) -> SignInRequired:
        """The backend refused even a renewed grant (HTTP ``status``): the retry limit."""
        return self._sign_in(f"holds a grant the backend refuses (HTTP {status})")

    async def _renew(self, http: aiohttp.ClientSession, stale: str | None) -> Grant:
        async with self._lock:
            grant = self.store.load(self.mount_id, self.owner)
            if (grant is not None and grant.access_token != stale
                    and not grant.renewal_due(REFRESH_MARGIN)):
                return grant  # renewed meanwhile by another connection
            if self.settings.grant != "authorization_code":
                grant = await self._machine_grant(http)
            elif grant is None:
                raise self._sign_in("has not signed in", lost=True)
            elif grant.refresh_token is None:
                why = ("holds an expired grant" if grant.renewal_due(REFRESH_MARGIN)
                       else "holds a grant the backend refuses")
                raise self._sign_in(f"{why} (no refresh token)", lost=True)
            else:
                try:
                    grant = await refresh(http, grant)
                except TokenError as exc:
                    if exc.error == "unreachable":
                        raise SignInRequired(f"mount {self.mount_id!r}: cannot renew the "
                                             f"grant of {self._who()}: {exc}") from exc
                    log.info("mount %s: refresh refused for %s: %s", self.mount_id,
                             self._who(), exc.error)
                    lost = exc.error == "invalid_grant"
                    if lost:  # revoked or expired for good: only a new sign-in helps
                        self.store.delete(self.mount_id, self.owner)
                    raise self._sign_in(
                        f"holds a grant the server refused ({exc.error})", lost=lost) from exc
            self.store.save(self.mount_id, self.owner, grant)
            return grant

    async def _machine_grant(self, http: aiohttp.ClientSession) -> Grant:
        try:
            target = await discover(http, self.url, None)
            if (self.settings.grant == "token_exchange"
                    and TOKEN_EXCHANGE not in (target.metadata.grant_types_supported or [])):
                # found out at start-up, before any caller's call fails on it
                raise DiscoveryError(f"{target.issuer} does not offer token exchange "
                                     f"(RFC 8693): its metadata lists no {TOKEN_EXCHANGE}")
            client = await client_identity(http, self.settings, target, None)
            scope = " ".join(self.settings.scopes) or target.scope
            return await client_credentials(http, target, client, scope)
        except (DiscoveryError, TokenError) as exc:
            raise SignInRequired(f"mount {self.mount_id!r}: cannot obtain the service grant: "
                                 f"{exc}") from exc
