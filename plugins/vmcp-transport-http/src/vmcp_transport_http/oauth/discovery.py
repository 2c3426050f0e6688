"""Finding a protected backend's authorization server.

From the backend's ``WWW-Authenticate`` challenge (``resource_metadata``, ``scope``), its
RFC 9728 protected resource metadata (the advertised URL, then the well-known fallbacks),
and the authorization server's RFC 8414 / OpenID Connect discovery document (with the path
variants the MCP authorization spec lists). The URL lists come from the official SDK's
helpers; the documents are validated with its models.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from mcp.client.auth.utils import (
    build_oauth_authorization_server_metadata_discovery_urls,
    build_protected_resource_metadata_discovery_urls,
)
from mcp.shared.auth import OAuthMetadata, ProtectedResourceMetadata
from pydantic import ValidationError

from vmcp.protocol.versions import LATEST_HANDSHAKE_VERSION

#: seconds one metadata request may take
METADATA_TIMEOUT = 15.0
_PARAM_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class DiscoveryError(Exception):
    """The backend's authorization server could not be found or is unusable."""


@dataclass(frozen=True, slots=True)
class Challenge:
    """The parameters of a ``Bearer`` ``WWW-Authenticate`` challenge."""

    resource_metadata: str | None = None
    scope: str | None = None
    error: str | None = None
    error_description: str | None = None

    @classmethod
    def parse(cls, header: str | None) -> Challenge:
        """Read a challenge header (an absent or non-Bearer one gives an empty challenge)."""
        if not header or not header.strip().lower().startswith("bearer"):
            return cls()
        params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                  for m in _PARAM_RE.finditer(header)}
        return cls(params.get("resource_metadata"), params.get("scope"), params.get("error"),
                   params.get("error_description"))


@dataclass(frozen=True, slots=True)
class AuthorizationTarget:
    """Everything a sign-in to one backend needs to know before it starts."""

    #: the backend's canonical URI, sent as the RFC 8707 ``resource`` on every request
    resource: str
    #: the issuer exactly as discovered (compared as a string, RFC 8414 §3.3)
    issuer: str
    metadata: OAuthMetadata
    #: the scope the challenge asked for, else the resource's ``scopes_supported``
    scope: str | None


def canonical_resource(url: str) -> str:
    """The canonical URI of a resource: lower-case scheme and host, no fragment, no
    trailing slash (RFC 8707 and the MCP authorization spec)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def check_url(url: str) -> None:
    """Refuse a metadata or endpoint URL that is not HTTPS (plain HTTP only to loopback)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    host = parts.hostname or ""
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    if parts.scheme != "http" or not loopback:
        raise DiscoveryError(f"refusing {url!r}: OAuth URLs must be https (or http to loopback)")


def http_form(url: str) -> str:
    """``url`` with a WebSocket scheme replaced by its HTTP one (``ws`` by ``http``, ``wss``
    by ``https``): where a WebSocket backend's metadata is fetched from, and the resource it
    stands for (RFC 9728 and the MCP spec name resources by HTTP(S) URIs)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower())
    return urlunsplit((scheme, *parts[1:])) if scheme else url


async def probe(http: aiohttp.ClientSession, url: str, stream: bool = False) -> Challenge | None:
    """Learn the backend's challenge: POST an unauthenticated ``initialize``, and when that is
    let through (some servers protect only what follows it) a ``tools/list``; for an HTTP+SSE
    backend (``stream``), GET its event stream; for a WebSocket backend (a ``ws``/``wss``
    URL), ask for the upgrade.

    :returns: the challenge, or None when the backend does not ask for authorization.
    """
    if urlsplit(url).scheme.lower() in ("ws", "wss"):
        return await _upgrade_challenge(http, url)
    if stream:
        return await _challenge(http, "GET", url, None)
    initialize = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": LATEST_HANDSHAKE_VERSION, "capabilities": {},
        "clientInfo": {"name": "vmcp", "version": "0"}}}
    challenge = await _challenge(http, "POST", url, initialize)
    if challenge is None:
        challenge = await _challenge(http, "POST", url,
                                     {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                     {"MCP-Protocol-Version": LATEST_HANDSHAKE_VERSION})
    return challenge


async def _challenge(http: aiohttp.ClientSession, method: str, url: str,
                     body: dict[str, Any] | None,
                     extra: dict[str, str] | None = None) -> Challenge | None:
    """The challenge of one unauthenticated request, None when it is not refused."""
    headers = {"Accept": "application/json, text/event-stream", **(extra or {})}
    try:
        async with http.request(method, url, json=body, headers=headers, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=METADATA_TIMEOUT)) as response:
            if response.status in (401, 403):
                return Challenge.parse(response.headers.get("WWW-Authenticate"))
            return None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DiscoveryError(f"cannot reach {url}: {exc}") from exc


async def _upgrade_challenge(http: aiohttp.ClientSession, url: str) -> Challenge | None:
    """The challenge of an unauthenticated WebSocket upgrade, None when it is accepted."""
    try:
        async with http.ws_connect(url, protocols=("mcp",), timeout=aiohttp.ClientWSTimeout(
                ws_receive=METADATA_TIMEOUT, ws_close=METADATA_TIMEOUT)):
            return None
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status in (401, 403):
            return Challenge.parse((exc.headers or {}).get("WWW-Authenticate"))
        raise DiscoveryError(f"{url} refused the WebSocket upgrade with HTTP {exc.status}"
                             ) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DiscoveryError(f"cannot reach {url}: {exc}") from exc


async def _get_json(http: aiohttp.ClientSession, url: str) -> dict[str, Any] | None:
    """A JSON document, or None when the URL does not serve one (any 4xx, a non-JSON body)."""
    check_url(url)
    try:
        async with http.get(url, headers={"Accept": "application/json",
                                          "MCP-Protocol-Version": LATEST_HANDSHAKE_VERSION},
                            allow_redirects=False,
                            timeout=aiohttp.ClientTimeout(total=METADATA_TIMEOUT)) as response:
            if response.status != 200:
                if response.status >= 500:
                    raise DiscoveryError(f"{url} answered HTTP {response.status}")
                return None
            data = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise DiscoveryError(f"cannot read {url}: {exc}") from exc
    return data if isinstance(data, dict) else None


async def resource_metadata(
    http: aiohttp.ClientSession, server_url: str, challenge: Challenge | None
) -> ProtectedResourceMetadata | None:
    """The backend's RFC 9728 metadata: from the challenge's URL, then the well-known ones."""
    advertised = challenge.resource_metadata if challenge is not None else None
    for url in build_protected_resource_metadata_discovery_urls(advertised,
                                                                 http_form(server_url)):
        data = await _get_json(http, url)
        if data is None:
            continue
        try:
            return ProtectedResourceMetadata.model_validate(data)
        except ValidationError as exc:
            raise DiscoveryError(f"{url}: invalid protected resource metadata: {exc}") from exc
    return None


async def server_metadata(
    http: aiohttp.ClientSession, issuer: str | None, server_url: str
) -> tuple[str, OAuthMetadata]:
    """The authorization server's metadata and its issuer, tried in the spec's order."""
    for url in build_oauth_authorization_server_metadata_discovery_urls(
            issuer, http_form(server_url)):
        data = await _get_json(http, url)
        if data is None:
            continue
        try:
            metadata = OAuthMetadata.model_validate(data)
        except ValidationError as exc:
            raise DiscoveryError(f"{url}: invalid authorization server metadata: {exc}") from exc
        found = str(data.get("issuer"))
        if issuer is not None and found.rstrip("/") != issuer.rstrip("/"):
            raise DiscoveryError(f"{url}: issuer {found!r} is not the advertised {issuer!r}")
        for endpoint in (metadata.authorization_endpoint, metadata.token_endpoint,
                         metadata.registration_endpoint):
            if endpoint is not None:
                check_url(str(endpoint))
        return found, metadata
    raise DiscoveryError(f"no authorization server metadata found for {issuer or server_url}")


async def discover(
    http: aiohttp.ClientSession, server_url: str, challenge: Challenge | None
) -> AuthorizationTarget:
    """Where and for what to sign in to the backend at ``server_url``."""
    prm = await resource_metadata(http, server_url, challenge)
    resource = canonical_resource(http_form(server_url))
    issuer: str | None = None
    scope = challenge.scope if challenge is not None else None
    if prm is not None:
        advertised = canonical_resource(str(prm.resource))
        if not (resource == advertised or resource.startswith(advertised + "/")):
            raise DiscoveryError(f"the protected resource metadata names {advertised!r}, "
                                 f"not {resource!r}")
        resource = advertised
        issuer = str(prm.authorization_servers[0])
        if scope is None and prm.scopes_supported:
            scope = " ".join(prm.scopes_supported)
    found, metadata = await server_metadata(http, issuer, server_url)
    return AuthorizationTarget(resource, found, metadata, scope)
