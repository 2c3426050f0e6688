"""The OAuth client's requests: client identity, the authorization URL, token requests.

authlib builds the protocol parts (the authorization URL, token request bodies, client
authentication at the token endpoint, the PKCE S256 challenge); the requests themselves go
over aiohttp, like the rest of vmcp's back side, and never follow redirects. Every
authorization and token request carries the RFC 8707 ``resource``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
from authlib.common.security import generate_token
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from mcp.shared.auth import OAuthMetadata, OAuthToken
from pydantic import ValidationError

from vmcp.config import OAuthSettings, expand_vars
from vmcp_transport_http.oauth.discovery import AuthorizationTarget, DiscoveryError, check_url
from vmcp_transport_http.oauth.store import Client, Grant

#: seconds one token or registration request may take
TOKEN_TIMEOUT = 15.0
_FORM = "application/x-www-form-urlencoded"


class TokenError(Exception):
    """The authorization server refused a token or registration request."""

    def __init__(self, error: str, description: str | None = None) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        #: the OAuth ``error`` code (``invalid_grant``, ``invalid_client``...)
        self.error = error


def auth_method(settings: OAuthSettings, metadata: OAuthMetadata, has_secret: bool) -> str:
    """How a configured client authenticates at the token endpoint: as configured, else
    ``private_key_jwt`` when it has a key, else the first of ``client_secret_basic``,
    ``client_secret_post`` the server allows (RFC 8414's default being basic), else ``none``
    for a client without a secret."""
    allowed = metadata.token_endpoint_auth_methods_supported or ["client_secret_basic"]
    method = settings.token_endpoint_auth_method
    if method is None and settings.private_key_file is not None:
        method = "private_key_jwt"
    if method is not None:
        if method == "private_key_jwt" and method not in allowed:
            raise DiscoveryError("the authorization server does not accept private_key_jwt")
        return method
    if not has_secret:
        return "none"
    for method in ("client_secret_basic", "client_secret_post"):
        if method in allowed:
            return method
    raise DiscoveryError(f"the authorization server allows none of client_secret_basic, "
                         f"client_secret_post (it allows {', '.join(allowed)})")


async def client_identity(
    http: aiohttp.ClientSession, settings: OAuthSettings, target: AuthorizationTarget,
    redirect_uri: str | None,
) -> Client:
    """The client vmcp signs in as, in the spec's order: a configured client id, a client ID
    metadata document (when the server takes them), dynamic client registration (RFC 7591)."""
    metadata = target.metadata
    if settings.client_id is not None:
        secret = expand_vars(settings.client_secret) if settings.client_secret else None
        method = auth_method(settings, metadata, bool(secret))
        key_file = (expand_vars(settings.private_key_file)
                    if method == "private_key_jwt" and settings.private_key_file else None)
        return Client(settings.client_id, secret, method, key_file=key_file)
    if (settings.client_metadata_url is not None
            and metadata.client_id_metadata_document_supported):
        return Client(settings.client_metadata_url, None, "none", "metadata_document")
    if metadata.registration_endpoint is None:
        if settings.client_metadata_url is not None:
            raise DiscoveryError(f"{target.issuer} accepts neither client ID metadata "
                                 "documents nor dynamic client registration")
        raise DiscoveryError(f"{target.issuer} offers no dynamic client registration: "
                             "configure a client_id for this mount")
    return await register(http, settings, metadata, redirect_uri, target.scope)


async def register(
    http: aiohttp.ClientSession, settings: OAuthSettings, metadata: OAuthMetadata,
    redirect_uri: str | None, scope: str | None,
) -> Client:
    """Register a public native client for ``redirect_uri`` (RFC 7591)."""
    body: dict[str, Any] = {
        "client_name": settings.client_name,
        "redirect_uris": [redirect_uri] if redirect_uri else [],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    }
    if scope:
        body["scope"] = scope
    data = await _post(http, str(metadata.registration_endpoint), payload=body)
    client_id = data.get("client_id")
    if not isinstance(client_id, str):
        raise TokenError("invalid_client_metadata", "the registration response has no client_id")
    return Client(client_id, data.get("client_secret"),
                  str(data.get("token_endpoint_auth_method") or "none"), "registered")


class Pkce:
    """A PKCE verifier and its S256 challenge (RFC 7636), fresh for one authorization."""

    def __init__(self) -> None:
        self.verifier = generate_token(64)
        self.challenge = create_s256_code_challenge(self.verifier)


def authorization_url(
    target: AuthorizationTarget, client: Client, redirect_uri: str, scope: str | None,
    state: str, pkce: Pkce,
) -> str:
    """Where a person goes to sign in and consent.

    :raises DiscoveryError: the server does not advertise PKCE with S256 (the spec says to
        abort then).
    """
    methods = target.metadata.code_challenge_methods_supported or []
    if "S256" not in methods:
        raise DiscoveryError(f"{target.issuer} does not support PKCE with S256")
    return str(prepare_grant_uri(
        str(target.metadata.authorization_endpoint), client.client_id, "code",
        redirect_uri=redirect_uri, scope=scope, state=state,
        code_challenge=pkce.challenge, code_challenge_method="S256",
        resource=target.resource))


async def exchange_code(
    http: aiohttp.ClientSession, target: AuthorizationTarget, client: Client, code: str,
    redirect_uri: str, pkce: Pkce,
) -> Grant:
    """Trade an authorization code for a grant."""
    token = await token_request(
        http, str(target.metadata.token_endpoint), client, "authorization_code",
        code=code, redirect_uri=redirect_uri, code_verifier=pkce.verifier,
        resource=target.resource)
    return _grant(target, client, token, None)


async def client_credentials(
    http: aiohttp.ClientSession, target: AuthorizationTarget, client: Client,
    scope: str | None,
) -> Grant:
    """A machine grant (OAuth 2.1 client credentials)."""
    token = await token_request(http, str(target.metadata.token_endpoint), client,
                                "client_credentials", scope=scope, resource=target.resource)
    return _grant(target, client, token, scope)


#: the RFC 8693 grant type, and the token types a subject token can be described as
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
TOKEN_TYPES = {"access_token": "urn:ietf:params:oauth:token-type:access_token",
               "jwt": "urn:ietf:params:oauth:token-type:jwt"}


async def exchange_token(
    http: aiohttp.ClientSession, target: AuthorizationTarget, client: Client,
    subject_token: str, subject_token_type: str, audience: str | None, scope: str | None,
) -> Grant:
    """Trade ``subject_token`` (of ``subject_token_type``, a key of :data:`TOKEN_TYPES`) for
    an access token to the backend (RFC 8693 §2.1).

    :raises DiscoveryError: the server's metadata does not list the token exchange grant.
    """
    if TOKEN_EXCHANGE not in (target.metadata.grant_types_supported or []):
        raise DiscoveryError(f"{target.issuer} does not offer token exchange (RFC 8693): its "
                             "metadata lists no grant type " + TOKEN_EXCHANGE)
    token = await token_request(
        http, str(target.metadata.token_endpoint), client, TOKEN_EXCHANGE,
        subject_token=subject_token, subject_token_type=TOKEN_TYPES[subject_token_type],
        requested_token_type=TOKEN_TYPES["access_token"], resource=target.resource,
        audience=audience, scope=scope)
    return _grant(target, client, token, scope)


async def refresh(http: aiohttp.ClientSession, grant: Grant) -> Grant:
    """The grant with a fresh access token (and a rotated refresh token, if the server
    rotates them).

    :raises TokenError: the server refused the refresh token (revoked, expired).
    """
    assert grant.refresh_token is not None
    token = await token_request(http, grant.token_endpoint, grant.client, "refresh_token",
                                refresh_token=grant.refresh_token, resource=grant.resource)
    return Grant(
        resource=grant.resource, issuer=grant.issuer, token_endpoint=grant.token_endpoint,
        client=grant.client, access_token=token.access_token,
        refresh_token=token.refresh_token or grant.refresh_token,
        expires_at=_expiry(token), scope=token.scope or grant.scope,
        revocation_endpoint=grant.revocation_endpoint, obtained_at=time.time())


async def revoke(http: aiohttp.ClientSession, grant: Grant) -> bool:
    """Ask the server to revoke the grant (RFC 7009); False when it has no such endpoint."""
    if grant.revocation_endpoint is None:
        return False
    token, hint = ((grant.refresh_token, "refresh_token") if grant.refresh_token
                   else (grant.access_token, "access_token"))
    body = prepare_token_request("revoke", token=token, token_type_hint=hint)
    # prepare_token_request always adds grant_type; revocation takes only these fields
    body = "&".join(part for part in body.split("&") if not part.startswith("grant_type="))
    await _post(http, grant.revocation_endpoint, client=grant.client, form=body, empty_ok=True)
    return True


async def token_request(
    http: aiohttp.ClientSession, endpoint: str, client: Client, grant_type: str,
    **params: Any,
) -> OAuthToken:
    """One token request; the client authenticates as its method says."""
    body = prepare_token_request(grant_type, **{k: v for k, v in params.items() if v})
    data = await _post(http, endpoint, client=client, form=body)
    try:
        return OAuthToken.model_validate(data)
    except ValidationError as exc:
        raise TokenError("invalid_response", f"{endpoint}: not a bearer token: {exc}") from exc


async def _post(
    http: aiohttp.ClientSession, url: str, *, client: Client | None = None,
    form: str | None = None, payload: dict[str, Any] | None = None, empty_ok: bool = False,
) -> dict[str, Any]:
    check_url(url)
    headers = {"Accept": "application/json"}
    data: str | None = None
    if form is not None:
        headers["Content-Type"] = _FORM
        data = form
        if client is not None:
            url, headers, data = _client_auth(client, url).prepare("POST", url, headers, data)
    try:
        async with http.post(url, data=data, json=payload, headers=headers, allow_redirects=False,
                             timeout=aiohttp.ClientTimeout(total=TOKEN_TIMEOUT)) as response:
            text = await response.text()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TokenError("unreachable", f"{url}: {exc}") from exc
    try:
        body = json.loads(text) if text.strip() else {}
    except ValueError:
        body = {}
    if status >= 400 or not isinstance(body, dict) or "error" in body:
        error = body.get("error") if isinstance(body, dict) else None
        described = body.get("error_description") if isinstance(body, dict) else None
        raise TokenError(str(error or f"http_{status}"), described or f"{url} answered {status}")
    if not body and not empty_ok:
        raise TokenError("invalid_response", f"{url} answered with no JSON")
    return body


def _client_auth(client: Client, url: str) -> ClientAuth:
    """How ``client`` authenticates a request to ``url``."""
    if client.auth_method != "private_key_jwt":
        return ClientAuth(client.client_id, client.client_secret, client.auth_method)
    if client.key_file is None:
        raise TokenError("invalid_client", "private_key_jwt without a private_key_file")
    try:
        key = Path(client.key_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise TokenError("invalid_client", f"cannot read {client.key_file}: {exc}") from exc
    return ClientAuth(client.client_id, key, PrivateKeyJWT(url))


def _expiry(token: OAuthToken) -> float | None:
    return time.time() + token.expires_in if token.expires_in is not None else None


def _grant(target: AuthorizationTarget, client: Client, token: OAuthToken,
           scope: str | None) -> Grant:
    revocation = target.metadata.revocation_endpoint
    return Grant(resource=target.resource, issuer=target.issuer,
                 token_endpoint=str(target.metadata.token_endpoint), client=client,
                 access_token=token.access_token, refresh_token=token.refresh_token,
                 expires_at=_expiry(token), scope=token.scope or scope,
                 revocation_endpoint=str(revocation) if revocation else None)
