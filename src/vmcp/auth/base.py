"""The auth driver interface (entry-point group ``vmcp.auth``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from vmcp.auth.metadata import resource_metadata_url, www_authenticate


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an authenticated identity and the persona it maps to."""

    name: str
    persona: str | None = None
    #: the bearer token the auth driver verified (the JWT driver keeps it): only ever sent to
    #: an authorization server, for a mount that exchanges it (RFC 8693), never to a backend
    credential: str | None = field(default=None, repr=False, compare=False)


#: the caller an isolated connection is being opened for, while it is (set by the router
#: around the connection's start, read by a transport that signs in per caller)
connecting_for: ContextVar[Principal | None] = ContextVar("vmcp_connecting_for", default=None)


class AuthError(Exception):
    """Authentication failed; ``status`` is the HTTP status to answer with (401 or 403).

    ``www_authenticate`` is the ``WWW-Authenticate`` header value to send with it (RFC 6750
    challenge with the RFC 9728 ``resource_metadata`` URL); the gateway fills it in when a
    driver leaves it unset.
    """

    def __init__(
        self, message: str, status: int = 401, www_authenticate: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.www_authenticate = www_authenticate


class AuthProvider(ABC):
    """Authenticates one front connection from its request headers.

    Instances are created with the ``[auth]`` config table as keyword settings (``resource``
    and ``authorization_servers`` always among them).
    """

    #: a provider that checks nothing may only be used on loopback binds
    loopback_only: bool = False

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    @abstractmethod
    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Return the caller's principal or raise :class:`AuthError`."""

    def refuse(
        self,
        headers: Mapping[str, str],
        message: str,
        *,
        status: int = 401,
        error: str | None = "invalid_token",
        scope: str | None = None,
    ) -> AuthError:
        """An :class:`AuthError` carrying the matching ``WWW-Authenticate`` challenge.

        :param error: the RFC 6750 error code (None when no credentials were sent at all).
        """
        url = resource_metadata_url(self.settings.get("resource"), headers)
        challenge = www_authenticate(
            url, error=error, description=message if error else None, scope=scope)
        return AuthError(message, status, challenge)
