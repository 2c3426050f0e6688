"""The auth driver interface (entry-point group ``vmcp.auth``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an authenticated identity and the persona it maps to."""

    name: str
    persona: str | None = None


class AuthError(Exception):
    """Authentication failed; ``status`` is the HTTP status to answer with (401 or 403)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class AuthProvider(ABC):
    """Authenticates one front connection from its request headers.

    Instances are created with the ``[auth]`` config table as keyword settings.
    """

    #: a provider that checks nothing may only be used on loopback binds
    loopback_only: bool = False

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    @abstractmethod
    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Return the caller's principal or raise :class:`AuthError`."""
