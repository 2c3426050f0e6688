"""The ``jwt`` auth driver: verifies a bearer JWT and maps one of its claims to a persona.

Checked on every request: the signature (a key from the JWKS URL, cached, or a static key),
the algorithm (from a fixed list, never ``none``), the expiry, the issuer when configured,
and the audience, which must name this gateway. Then the required scopes (403
``insufficient_scope`` when one is missing) and the persona claim.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt

from vmcp.auth.base import AuthProvider, Principal
from vmcp.auth.bearer import bearer_token
from vmcp_auth_jwt.jwks import JwksCache, JwksUnavailable

log = logging.getLogger("vmcp.auth.jwt")

ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "EdDSA"]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(item) for item in value]
    return []


class JwtAuth(AuthProvider):
    """JWT bearer tokens.

    Settings (``[auth]``, with ``driver = "jwt"``):

    - ``jwks_url``: the issuer's key set (``https://``; ``http://`` on loopback only), or
      ``key`` (a PEM public key, or a shared secret with ``algorithms = ["HS256"]``) or
      ``key_file``; exactly one of the three.
    - ``audience``: the ``aud`` tokens must carry; defaults to ``resource`` (this gateway's
      canonical URL). One of them is required.
    - ``issuer``: the ``iss`` tokens must carry (recommended).
    - ``algorithms``: accepted ``alg`` values (default: the asymmetric ones).
    - ``persona_claim`` (default ``"vmcp_persona"``), ``personas`` (claim value -> persona;
      without it the value is the persona), ``default_persona`` (when the claim is absent;
      without it such a token is refused with 403).
    - ``required_scopes``: scopes every token must have (``scope`` or ``scp`` claim).
    - ``subject_claim`` (default ``"sub"``): the principal's name.
    - ``leeway`` (seconds of clock skew, default 30), ``jwks_ttl`` (300), ``jwks_min_refresh``
      (30), ``jwks_timeout`` (5).
    """

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        sources = [name for name in ("jwks_url", "key", "key_file") if settings.get(name)]
        if len(sources) != 1:
            raise ValueError("[auth] for the jwt driver needs exactly one of jwks_url, key, "
                             f"key_file (got {', '.join(sources) or 'none'})")
        self.audience: str | None = settings.get("audience") or settings.get("resource")
        if not self.audience:
            raise ValueError("[auth] for the jwt driver needs audience (or resource): the "
                             "URL tokens must be issued for")
        self.issuer: str | None = settings.get("issuer")
        self.algorithms: list[str] = list(settings.get("algorithms") or ASYMMETRIC)
        if "none" in (alg.lower() for alg in self.algorithms):
            raise ValueError("[auth] algorithms must not include 'none'")
        self.persona_claim: str = settings.get("persona_claim", "vmcp_persona")
        self.personas: dict[str, str] | None = settings.get("personas")
        self.default_persona: str | None = settings.get("default_persona")
        self.required_scopes: list[str] = list(settings.get("required_scopes") or [])
        self.subject_claim: str = settings.get("subject_claim", "sub")
        self.leeway = float(settings.get("leeway", 30))
        self.jwks: JwksCache | None = None
        self.key: Any = None
        if settings.get("jwks_url"):
            self.jwks = JwksCache(
                settings["jwks_url"], float(settings.get("jwks_ttl", 300)),
                float(settings.get("jwks_min_refresh", 30)),
                float(settings.get("jwks_timeout", 5)))
        elif settings.get("key"):
            self.key = settings["key"]
        else:
            self.key = Path(settings["key_file"]).expanduser().read_text(encoding="utf-8")

    async def _signing_key(self, headers: Mapping[str, str], token: str) -> Any:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise self.refuse(headers, "malformed token") from exc
        if header.get("alg") not in self.algorithms:
            raise self.refuse(headers, "token algorithm not accepted")
        if self.jwks is None:
            return self.key
        kid = header.get("kid")
        try:
            found = await self.jwks.key(kid if isinstance(kid, str) else None)
        except JwksUnavailable as exc:
            log.error("cannot verify tokens: %s", exc)
            raise self.refuse(headers, "tokens cannot be verified now") from exc
        if found is None:
            raise self.refuse(headers, "token signed with an unknown key")
        return found.key

    def _claims(self, headers: Mapping[str, str], token: str, key: Any) -> dict[str, Any]:
        required = ["exp", "aud"] + (["iss"] if self.issuer else [])
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=self.algorithms, audience=self.audience,
                issuer=self.issuer, leeway=self.leeway, options={"require": required})
        except jwt.ExpiredSignatureError as exc:
            raise self.refuse(headers, "the token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise self.refuse(headers, "the token is not for this server") from exc
        except jwt.InvalidIssuerError as exc:
            raise self.refuse(headers, "the token has the wrong issuer") from exc
        except jwt.InvalidSignatureError as exc:
            raise self.refuse(headers, "bad token signature") from exc
        except jwt.PyJWTError as exc:
            raise self.refuse(headers, f"invalid token: {exc}") from exc
        return claims

    def _persona(self, headers: Mapping[str, str], claims: dict[str, Any]) -> str:
        value = claims.get(self.persona_claim)
        if value is None:
            if self.default_persona:
                return self.default_persona
        elif self.personas is None:
            return str(value)
        elif str(value) in self.personas:
            return self.personas[str(value)]
        raise self.refuse(headers, "the token grants no persona on this server", status=403,
                          error=None)

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The principal of a valid token: its subject, the persona its claim maps to, and
        the token itself (for a mount that exchanges it at an authorization server)."""
        token = bearer_token(headers)
        if token is None:
            raise self.refuse(headers, "a bearer token is required", error=None)
        claims = self._claims(headers, token, await self._signing_key(headers, token))
        granted = set(_strings(claims.get("scope")) + _strings(claims.get("scp")))
        missing = [scope for scope in self.required_scopes if scope not in granted]
        if missing:
            raise self.refuse(headers, "insufficient scope", status=403,
                              error="insufficient_scope", scope=" ".join(self.required_scopes))
        subject = claims.get(self.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise self.refuse(headers, f"the token has no {self.subject_claim!r} claim")
        return Principal(subject, self._persona(headers, claims), credential=token)

