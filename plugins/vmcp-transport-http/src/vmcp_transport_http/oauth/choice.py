"""Which authorizer a new connection of an OAuth mount gets."""

from __future__ import annotations

from vmcp.auth.base import connecting_for
from vmcp.config import MountConfig
from vmcp_transport_http.oauth.contract import Authorizer


def authorizer_for(
    mount: MountConfig, scope: tuple[str, str] | None,
) -> Authorizer | None:
    """The authorizer of a new connection of ``mount`` serving ``scope`` (None without OAuth):
    for a caller's own connection of a token exchange mount, that caller's exchanged token;
    else the grant of the persona it serves, or the service grant.

    :raises SignInRequired: a person must sign in first (the exception offers the sign-in),
        or the caller has no token to exchange.
    """
    if mount.oauth is None:
        return None
    # imported here: authlib and the SDK's OAuth models (a second of start-up) load only
    # for a mount that signs in
    from vmcp_transport_http.oauth.authorizer import BackendAuthorizer, grant_owner
    from vmcp_transport_http.oauth.exchange import ExchangeAuthorizer
    from vmcp_transport_http.oauth.store import GrantStore

    if mount.oauth.grant == "token_exchange" and scope is not None:
        return ExchangeAuthorizer(mount, connecting_for.get())
    authorizer = BackendAuthorizer(mount, grant_owner(mount, scope), GrantStore())
    authorizer.check()
    return authorizer
