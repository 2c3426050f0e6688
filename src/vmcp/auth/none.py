"""The built-in ``none`` auth driver: every caller is anonymous; loopback binds only."""

from __future__ import annotations

from collections.abc import Mapping

from vmcp.auth.base import AuthProvider, Principal

ANONYMOUS = Principal("anonymous")


class NoAuth(AuthProvider):
    """Accepts everyone as ``anonymous`` (no persona: ``[gateway] default_persona`` applies).

    Because it checks nothing, fronts refuse to bind it to anything but a loopback address.
    """

    loopback_only = True

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Every caller is the anonymous principal."""
        return ANONYMOUS
