"""What an HTTP connection knows of OAuth: the authorizer it asks for a bearer token and
the error that says a person must sign in.

Kept apart from the authorizers so that a connection of a mount without ``oauth`` (most of
them, and every front) loads neither authlib nor the SDK's OAuth models.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp

from vmcp.transports.signin import SignInNeeded


class SignInRequired(SignInNeeded):
    """No usable grant: the message says which command signs in."""


class Authorizer(Protocol):
    """What a connection asks for its bearer token (one implementation per kind of grant)."""

    async def header(self, http: aiohttp.ClientSession) -> str:
        """The ``Authorization`` value to send now."""

    async def rejected(self, http: aiohttp.ClientSession, status: int,
                       www_authenticate: str | None, sent: str) -> None:
        """The backend refused ``sent``: renew so that the request can be retried once."""

    def refused(self, status: int) -> SignInRequired:
        """The error for a backend that refused even the renewed token."""
