"""Signing a person in to a protected backend from the command line (``vmcp auth login``):
the authorization URL is shown, the code received on a loopback redirect (see
:mod:`~vmcp_transport_http.oauth.flow`)."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from vmcp.config import MountConfig
from vmcp_transport_http.oauth.authorizer import BackendAuthorizer
from vmcp_transport_http.oauth.contract import SignInRequired
from vmcp_transport_http.oauth.flow import SignInError, begin
from vmcp_transport_http.oauth.store import Grant, GrantStore

#: seconds a person has to finish signing in
LOGIN_TIMEOUT = 300.0


async def sign_in(
    mount: MountConfig, owner: str | None, store: GrantStore, show: Callable[[str], None],
    scope: str | None = None, timeout: float = LOGIN_TIMEOUT,
) -> Grant:
    """Sign ``owner`` (a persona, None: the service grant) in to ``mount`` and store the grant.

    ``show`` is given the authorization URL for the person to open. A client-credentials
    mount needs no person: its grant is obtained directly (so is a token exchange mount's
    service grant).

    :param scope: extra scope to ask for (step-up); added to what the previous grant had.
    """
    settings = mount.oauth
    assert settings is not None and mount.url is not None
    if settings.grant != "authorization_code":  # a machine grant: no person involved
        store.delete(mount.id, owner)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            try:
                await BackendAuthorizer(mount, owner, store).header(http)
            except SignInRequired as exc:
                raise SignInError(str(exc)) from exc
        grant = store.load(mount.id, owner)
        assert grant is not None
        return grant
    flow = await begin(mount, owner, store, scope, timeout)
    try:
        show(flow.url)
        await flow.finish()
    finally:
        await flow.aclose()
    assert flow.grant is not None
    return flow.grant
