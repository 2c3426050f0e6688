"""One person's sign-in to a protected backend: authorization code with PKCE, received on a
loopback redirect: ``http://127.0.0.1:PORT/callback`` (RFC 8252), or the gateway's own HTTP
front (``/oauth/callback``, see :mod:`~vmcp_transport_http.oauth.callbacks`) when it serves
one on loopback and the client is registered dynamically (whose redirect URI is its own).

:func:`begin` does everything up to the authorization URL (discovery, client identity,
PKCE, a fresh ``state``, the receiver listening); :meth:`AuthorizationFlow.finish` waits for
the redirect, checks it and exchanges the code. ``vmcp auth login`` prints the URL; the
gateway hands it to the caller's client as a URL-mode elicitation.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import aiohttp
from aiohttp import web
from authlib.common.security import generate_token
from mcp.client.auth import OAuthFlowError
from mcp.client.auth.utils import union_scopes, validate_authorization_response_iss

from vmcp.config import MountConfig, OAuthSettings
from vmcp.transports.netsec import IDLE_CONNECTION_TIMEOUT
from vmcp.transports.signin import SignInNeeded
from vmcp_transport_http.oauth.callbacks import CALLBACK_PATH as FRONT_CALLBACK_PATH
from vmcp_transport_http.oauth.callbacks import FrontCallbacks, answer_page, front_callbacks
from vmcp_transport_http.oauth.client import (
    Pkce,
    TokenError,
    authorization_url,
    client_identity,
    exchange_code,
)
from vmcp_transport_http.oauth.discovery import (
    AuthorizationTarget,
    DiscoveryError,
    discover,
    probe,
)
from vmcp_transport_http.oauth.store import Client, Grant, GrantStore

CALLBACK_PATH = "/callback"


class SignInError(SignInNeeded):
    """The sign-in did not produce a grant; the message says why."""


class Receiver(Protocol):
    """Where the authorization response of one sign-in arrives."""

    #: the fresh ``state`` the response must carry
    state: str

    @property
    def redirect_uri(self) -> str:
        """Where the authorization server sends the browser back to."""

    async def start(self) -> None:
        """Start taking the response."""

    async def wait(self, timeout: float) -> dict[str, str]:
        """The authorization response's parameters (:class:`SignInError` after ``timeout``)."""

    async def close(self) -> None:
        """Stop taking it (idempotent)."""


async def _within(response: asyncio.Future[dict[str, str]], timeout: float) -> dict[str, str]:
    try:
        return await asyncio.wait_for(asyncio.shield(response), timeout)
    except TimeoutError:
        raise SignInError(f"no sign-in within {timeout:.0f} seconds") from None


class FrontReceiver:
    """The gateway's HTTP front takes the response (at ``<front>/oauth/callback``)."""

    def __init__(self, callbacks: FrontCallbacks, base: str) -> None:
        self.state = generate_token(32)
        self._callbacks = callbacks
        self._base = base
        self._result = callbacks.expect(self.state)

    @property
    def redirect_uri(self) -> str:
        """Where the authorization server sends the browser back to."""
        return f"{self._base}{FRONT_CALLBACK_PATH}"

    async def start(self) -> None:
        """Nothing to start: the front serves already."""

    async def wait(self, timeout: float) -> dict[str, str]:
        """The authorization response's parameters."""
        return await _within(self._result, timeout)

    async def close(self) -> None:
        """The front no longer takes this sign-in's response."""
        self._callbacks.forget(self.state)


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
        self._runner = web.AppRunner(app, access_log=None,
                                     keepalive_timeout=IDLE_CONNECTION_TIMEOUT)
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
        return answer_page(params)

    async def wait(self, timeout: float) -> dict[str, str]:
        """The authorization response's parameters."""
        return await _within(self._result, timeout)

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class AuthorizationFlow:
    """A sign-in whose URL is ready: :meth:`finish` waits for the person and stores the
    grant (as :attr:`grant`)."""

    def __init__(self, mount: MountConfig, owner: str | None, store: GrantStore,
                 http: aiohttp.ClientSession, receiver: Receiver,
                 target: AuthorizationTarget, client: Client, scope: str | None,
                 timeout: float) -> None:
        self.mount_id = mount.id
        self.owner = owner
        self._store = store
        self._http = http
        self._receiver = receiver
        self._target = target
        self._client = client
        self._scope = scope
        self._timeout = timeout
        self._pkce = Pkce()
        self.url = authorization_url(target, client, receiver.redirect_uri, scope,
                                     receiver.state, self._pkce)
        who = f"as persona {owner!r}" if owner is not None else "for the service grant"
        self.message = f"Sign in to {mount.id!r} ({target.issuer}) {who} to continue."
        self.grant: Grant | None = None

    async def finish(self) -> None:
        """Wait for the redirect, check it, exchange the code and store the grant.

        :raises SignInError: refused, malformed, or not within the flow's timeout.
        """
        try:
            params = await self._receiver.wait(self._timeout)
            if "error" in params:
                described = params.get("error_description")
                raise SignInError(f"the authorization server refused: {params['error']}"
                                  + (f" ({described})" if described else ""))
            validate_authorization_response_iss(params.get("iss"), self._target.metadata)
            if "code" not in params:
                raise SignInError("the authorization response carries no code")
            grant = await exchange_code(self._http, self._target, self._client, params["code"],
                                        self._receiver.redirect_uri, self._pkce)
        except (DiscoveryError, TokenError, OAuthFlowError) as exc:
            raise SignInError(str(exc)) from exc
        finally:
            await self.aclose()
        if grant.scope is None:
            grant.scope = self._scope
        self._store.save(self.mount_id, self.owner, grant)
        self.grant = grant

    async def aclose(self) -> None:
        """Stop listening and release the HTTP client (idempotent)."""
        await self._receiver.close()
        await self._http.close()


async def begin(mount: MountConfig, owner: str | None, store: GrantStore,
                scope: str | None, timeout: float) -> AuthorizationFlow:
    """Prepare a sign-in of ``owner`` (None: the service grant) to ``mount``.

    :param scope: extra scope to ask for (step-up); added to what the previous grant had.
    :raises SignInError: the backend's authorization server cannot be used.
    """
    settings = mount.oauth
    assert settings is not None and mount.url is not None
    http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    receiver = receiver_for(settings)
    try:
        challenge = await probe(http, mount.url, stream=mount.transport == "sse")
        target = await discover(http, mount.url, challenge)
        previous = store.load(mount.id, owner)
        wanted = " ".join(settings.scopes) or target.scope
        if previous is not None:
            wanted = union_scopes(previous.scope, wanted)
        wanted = union_scopes(wanted, scope)
        await receiver.start()
        client = await client_identity(http, settings, target, receiver.redirect_uri)
        return AuthorizationFlow(mount, owner, store, http, receiver, target, client, wanted,
                                 timeout)
    except BaseException as exc:
        await receiver.close()
        await http.close()
        if isinstance(exc, (DiscoveryError, TokenError, OSError)):
            raise SignInError(str(exc)) from exc
        raise


def receiver_for(settings: OAuthSettings) -> Receiver:
    """The gateway's HTTP front for a dynamically registered client when there is one on
    loopback; else a loopback listener (on the configured port)."""
    dynamic = (settings.client_id is None and settings.client_metadata_url is None
               and settings.redirect_port == 0)
    base = front_callbacks.base
    if dynamic and base is not None:
        return FrontReceiver(front_callbacks, base)
    return LoopbackReceiver(settings.redirect_port)
