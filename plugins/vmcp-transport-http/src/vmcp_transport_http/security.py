"""Front-side checks every HTTP request passes: bind policy, ``Host``/``Origin``, body size.

DNS-rebinding protection: a browser page on an attacker's domain that re-points that domain at
127.0.0.1 still sends its own domain in ``Host`` (and its own origin in ``Origin``). So a
``Host`` is accepted only when it names an IP address literal, ``localhost`` or an entry of
``allowed_hosts``, and an ``Origin``, when present, only when it is a loopback origin or listed
in ``allowed_origins``. Both refusals are 403.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from vmcp.config import ConfigError
from vmcp_transport_http.messages import HttpProblem
from vmcp_transport_http.settings import FrontSettings

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """True when ``host`` (a name or an address) can only be reached from this machine."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    address = _ip(host)
    return address is not None and address.is_loopback


def refuse_insecure_bind(name: str, settings: FrontSettings, auth_required: bool) -> None:
    """Refuse to serve on a non-loopback address when no auth driver checks callers.

    :raises ConfigError: naming the address and the two ways out.
    """
    if auth_required or is_loopback(settings.host):
        return
    raise ConfigError(
        f"[transports.{name}]",
        [
            f"transports.{name}.host: refusing to serve {name} on {settings.host!r} without "
            "authentication: anyone who can reach this address could use every mounted "
            'server. Configure an auth driver ([auth] driver = "token") or bind to 127.0.0.1'
        ],
    )


def _split_host(value: str) -> str:
    """The host name of a ``Host`` header value, without port or IPv6 brackets, lowercased."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


class HostOriginPolicy:
    """The allow-lists for ``Host`` and ``Origin``, built from a front's settings."""

    def __init__(self, settings: FrontSettings) -> None:
        self._any_host = "*" in settings.allowed_hosts
        self._hosts = {h.strip().lower() for h in settings.allowed_hosts}
        self._host_names = {_split_host(h) for h in settings.allowed_hosts if h.count(":") != 1}
        bind = settings.host.strip("[]").lower()
        if bind not in ("", "0.0.0.0", "::"):
            self._host_names.add(bind)
        self._any_origin = "*" in settings.allowed_origins
        self._origins = {o.rstrip("/").lower() for o in settings.allowed_origins}

    def host_allowed(self, host: str | None) -> bool:
        """Whether a ``Host`` header value is acceptable (a missing one is not)."""
        if self._any_host:
            return True
        if not host:
            return False
        name = _split_host(host)
        return (
            name in _LOOPBACK_NAMES
            or _ip(name) is not None
            or name in self._host_names
            or host.strip().lower() in self._hosts
        )

    def origin_allowed(self, origin: str | None) -> bool:
        """Whether an ``Origin`` header value is acceptable (absent is: not from a browser)."""
        if origin is None or self._any_origin:
            return True
        origin = origin.strip().rstrip("/").lower()
        if origin in self._origins:
            return True
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        return parts.scheme in ("http", "https") and is_loopback(parts.hostname or "")

    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        """An aiohttp middleware answering 403 to a request that fails either check."""

        @web.middleware
        async def check_host_and_origin(
            request: web.Request, handler: Handler
        ) -> web.StreamResponse:
            if not self.host_allowed(request.headers.get("Host")):
                raise HttpProblem(403, "Forbidden: Host header not allowed")
            if not self.origin_allowed(request.headers.get("Origin")):
                raise HttpProblem(403, "Forbidden: Origin not allowed")
            return await handler(request)

        return check_host_and_origin


async def read_body(request: web.Request, limit: int) -> bytes:
    """Read a request body of at most ``limit`` bytes.

    :raises HttpProblem: 413 when the declared or the actual size is larger.
    """
    too_large = HttpProblem(413, f"Request body too large (limit {limit} bytes)")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)
