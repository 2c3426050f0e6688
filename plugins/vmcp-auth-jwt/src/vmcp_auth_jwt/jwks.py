"""A cached JSON Web Key Set fetched from the authorization server's ``jwks_uri``."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

import jwt

log = logging.getLogger("vmcp.auth.jwt")


class JwksUnavailable(Exception):
    """The key set could not be fetched and no earlier copy is at hand."""


def check_jwks_url(url: str) -> str:
    """Accept ``https://`` URLs, and ``http://`` only on a loopback host.

    :raises ValueError: any other URL (keys fetched in the clear could be swapped).
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if loopback:
            return url
    raise ValueError(f"jwks_url must be an https:// URL (http:// only on loopback): {url!r}")


def _fetch(url: str, timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data = json.loads(response.read())
    if not isinstance(data, dict):
        raise ValueError("the key set is not a JSON object")
    return data


class JwksCache:
    """The keys of one JWKS URL, re-fetched after ``ttl`` seconds, or on an unknown key id
    (at most once per ``min_refresh`` seconds, so unknown ids cannot hammer the server)."""

    def __init__(self, url: str, ttl: float, min_refresh: float, timeout: float) -> None:
        self.url = check_jwks_url(url)
        self.ttl = ttl
        self.min_refresh = min_refresh
        self.timeout = timeout
        self.fetches = 0
        self._keys: list[jwt.PyJWK] | None = None
        self._fetched = float("-inf")
        self._failed = float("-inf")
        self._lock = asyncio.Lock()

    async def _refresh(self, seen: float) -> None:
        """Fetch the key set unless someone else did since ``seen`` (the fetch time we saw)."""
        async with self._lock:
            if self._fetched != seen:
                return
            self.fetches += 1
            try:
                data = await asyncio.to_thread(_fetch, self.url, self.timeout)
                keys = list(jwt.PyJWKSet.from_dict(data).keys)
            except Exception as exc:
                if self._keys is None:
                    self._failed = time.monotonic()
                    raise JwksUnavailable(f"cannot fetch {self.url}: {exc}") from exc
                log.warning("cannot refresh %s, keeping the cached keys: %s", self.url, exc)
                keys = self._keys
            self._keys = keys
            self._fetched = time.monotonic()

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        keys = self._keys or []
        if kid is None:
            return keys[0] if len(keys) == 1 else None
        return next((key for key in keys if key.key_id == kid), None)

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key with id ``kid`` (the only key when ``kid`` is None), or None."""
        if self._keys is None and time.monotonic() - self._failed < self.min_refresh:
            raise JwksUnavailable(f"{self.url} could not be fetched a moment ago")
        if self._keys is None or time.monotonic() - self._fetched > self.ttl:
            await self._refresh(self._fetched)
        found = self._find(kid)
        if found is None and time.monotonic() - self._fetched >= self.min_refresh:
            await self._refresh(self._fetched)
            found = self._find(kid)
        return found
