"""Reading a bearer token from request headers (RFC 6750 §2.1)."""

from __future__ import annotations

from collections.abc import Mapping

from vmcp.auth.metadata import header


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None when there is none."""
    value = header(headers, "authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
