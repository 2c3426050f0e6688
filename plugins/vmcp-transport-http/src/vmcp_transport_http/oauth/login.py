"""Signing a person in to a protected backend: authorization code with PKCE, received on a
loopback redirect (``http://127.0.0.1:PORT/callback``, RFC 8252)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from aiohttp import web
from authlib.common.security import generate_token
from mcp.client.auth import OAuthFlowError
from mcp.client.auth.utils import union_scopes, validate_authorization_response_iss

from vmcp.config import MountConfig
from vmcp_transport_http.oauth.authorizer import BackendAuthorizer, SignInRequired
from vmcp_transport_http.oauth.client import (
    Pkce,
    TokenError,
    authorization_url,
    client_identity,
    exchange_code,
)
from vmcp_transport_http.oauth.discovery import DiscoveryError, discover, probe
from vmcp_transport_http.oauth.store import Grant, GrantStore

#: seconds a person has to finish signing in
LOGIN_TIMEOUT = 300.0
CALLBACK_PATH = "/callback"
_DONE_PAGE = "<!doctype html><title>vmcp</title><p>Signed in. You can close this window.</p>"
_FAILED_PAGE = "<!doctype html><title>vmcp</title><p>Sign-in failed: {}</p>"


class SignInError(Exception):
    """The sign-in did not produce a grant; the message says why."""


class LoopbackReceiver:
    """A one-shot HTTP server on 127.0.0.1 that takes the authorization response."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._runner: web.AppRunner | None = None
        self._result: asyncio.Future[dict[str, str]] = (
            asyncio.get_running_loop().create_future())
        self.state = generate_token(32)

    @property
    def redirect_uri(self) -> str:
        """Where the authorization server sends the browser back to."""
        return f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"

    async def start(self) -> None:
        """Listen (on the configured port, or a free one)."""
        app = web.Application()
        app.router.add_get(CALLBACK_PATH, self._callback)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server  # aiohttp keeps the bound socket here only
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _callback(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        if params.get("state") != self.state:
            # not the response to our request (a stale tab, a forged link): keep waiting
            return web.Response(status=400, text="unexpected state", content_type="text/plain")
        if not self._result.done():
            self._result.set_result(params)
        error = params.get("error")
        page = _FAILED_PAGE.format(error) if error else _DONE_PAGE
        return web.Response(text=page, content_type="text/html",
                            headers={"X-Frame-Options": "DENY", "Cache-Control": "no-store"})

    async def wait(self, timeout: float) -> dict[str, str]:
        """The authorization response's parameters."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), timeout)
        except TimeoutError:
            raise SignInError(f"no sign-in within {timeout:.0f} seconds") from None

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()


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
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        if settings.grant != "authorization_code":  # a machine grant: no person involved
            store.delete(mount.id, owner)
            try:
                await BackendAuthorizer(mount, owner, store).header(http)
            except SignInRequired as exc:
                raise SignInError(str(exc)) from exc
            grant = store.load(mount.id, owner)
            assert grant is not None
            return grant
        try:
            challenge = await probe(http, mount.url, stream=mount.transport == "sse")
            target = await discover(http, mount.url, challenge)
        except DiscoveryError as exc:
            raise SignInError(str(exc)) from exc
        previous = store.load(mount.id, owner)
        wanted = " ".join(settings.scopes) or target.scope
        if previous is not None:
            wanted = union_scopes(previous.scope, wanted)
        wanted = union_scopes(wanted, scope)
        receiver = LoopbackReceiver(settings.redirect_port)
        await receiver.start()
        try:
            client = await client_identity(http, settings, target, receiver.redirect_uri)
            pkce = Pkce()
            show(authorization_url(target, client, receiver.redirect_uri, wanted,
                                   receiver.state, pkce))
            params = await receiver.wait(timeout)
            if "error" in params:
                described = params.get("error_description")
                raise SignInError(f"the authorization server refused: {params['error']}"
                                  + (f" ({described})" if described else ""))
            validate_authorization_response_iss(params.get("iss"), target.metadata)
            if "code" not in params:
                raise SignInError("the authorization response carries no code")
            grant = await exchange_code(http, target, client, params["code"],
                                        receiver.redirect_uri, pkce)
        except (DiscoveryError, TokenError, OAuthFlowError) as exc:
            raise SignInError(str(exc)) from exc
        finally:
            await receiver.close()
        if grant.scope is None:
            grant.scope = wanted
        store.save(mount.id, owner, grant)
        return grant
