"""Network exposure rules shared by every front transport that listens on a socket.

What the ``http``, ``sse`` and ``ws`` fronts must all do the same way lives here, once:

* :class:`NetworkFrontSettings`: the settings every listening front has (bind address, port,
  ``Host`` and ``Origin`` allow-lists, the largest message accepted). A transport subclasses it
  for its own ``[transports.<name>]`` table and reads that table with
  :func:`parse_front_settings`.
* :func:`refuse_insecure_bind`: never serve on a non-loopback address unless an auth driver
  checks callers (anyone who can reach the address could otherwise use every mounted server).
  :func:`check_network_front` does both checks for a transport's ``check_front``, which runs
  before any backend is started.
* :class:`HostOriginPolicy`: DNS-rebinding and cross-site protection. A page on an attacker's
  domain that re-points that domain at 127.0.0.1 still sends its own domain in ``Host`` and its
  own origin in ``Origin``; so a ``Host`` is accepted only when it is an IP address literal,
  ``localhost``, the bind address or listed, and an ``Origin`` (sent by browsers only) only when
  it is the front's own origin (its host and port are the request's accepted ``Host``) or
  listed: a page on another port of this machine is another site. A refused request gets 403.
* :func:`front_url`: the address a front reports once listening (with the real port).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vmcp.config import ConfigError, format_errors
from vmcp.transports.base import FrontHost, Transport

#: the default largest message (request body, WebSocket message) a network front accepts
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: seconds an HTTP server's connection stays open serving no request (before its first head
#: is complete, or between requests), as nginx and aiohttp's ``run_app`` keep one; aiohttp's
#: servers otherwise keep one an hour, which a client trickling heads can use to hold sockets
IDLE_CONNECTION_TIMEOUT = 75.0

LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})


class NetworkFrontSettings(BaseModel):
    """Settings every front that listens on a TCP socket shares.

    Subclasses add their own fields and override ``port`` with their default.
    """

    # Built when a front first reads its settings, not whenever this module is imported.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: address to bind; anything but a loopback address needs an auth driver
    host: str = "127.0.0.1"
    #: TCP port; 0 picks a free one (the real port is reported when ready)
    port: int = Field(0, ge=0, le=65535)
    #: extra ``Host`` header values accepted besides IP literals, loopback names and the bind
    #: address (``name`` accepts any port, ``name:port`` one port, ``*`` turns the check off)
    allowed_hosts: list[str] = Field(default_factory=list)
    #: extra ``Origin`` values accepted besides the front's own (``*`` turns the check off)
    allowed_origins: list[str] = Field(default_factory=list)
    #: the largest message a client may send (HTTP answers 413 above it, WebSocket closes 1009)
    max_message_bytes: int = Field(DEFAULT_MAX_MESSAGE_BYTES, ge=1024)
    #: share the port with other processes bound the same way (``SO_REUSEPORT``): the kernel
    #: spreads new connections over them. ``vmcp start --workers N`` sets it for its workers
    reuse_port: bool = False


SettingsT = TypeVar("SettingsT", bound=BaseModel)


def parse_front_settings(model: type[SettingsT], name: str, raw: Mapping[str, Any]) -> SettingsT:
    """Validate one ``[transports.<name>]`` table with ``model``.

    :raises ConfigError: with one ``transports.<name>.<field>: problem`` line per problem.
    """
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        problems = [f"transports.{name}.{line}" for line in format_errors(exc)]
        raise ConfigError(f"[transports.{name}]", problems) from exc


def validate_url_path(value: str) -> str:
    """Check that ``value`` is an absolute URL path such as ``/mcp`` (for pydantic validators).

    :raises ValueError: when it is relative or holds a query, a fragment or a space.
    """
    if not value.startswith("/") or any(c in value for c in "?# "):
        raise ValueError("must be an absolute URL path such as /mcp (no query, no fragment)")
    return value


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """True when ``host`` (a name or an address) can only be reached from this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    address = _ip(host)
    return address is not None and address.is_loopback


def refuse_insecure_bind(name: str, host: str, auth_required: bool) -> None:
    """Refuse to serve front ``name`` on a non-loopback ``host`` when no auth driver checks callers.

    :raises ConfigError: naming the address and the two ways out.
    """
    refuse_public_bind(f"transports.{name}.host", name, host, auth_required,
                       "could use every mounted server")


def refuse_public_bind(
    setting: str, what: str, host: str, auth_required: bool, exposure: str
) -> None:
    """Refuse to serve ``what`` on a non-loopback ``host`` when no auth driver checks callers.

    :param setting: the dotted setting that holds ``host`` (``monitoring.metrics_host``).
    :param exposure: what anyone reaching the address could then do.
    :raises ConfigError: naming the setting, the address and the two ways out.
    """
    if auth_required or is_loopback(host):
        return
    section = setting.rsplit(".", 1)[0]
    raise ConfigError(f"[{section}]", [
        f"{setting}: refusing to serve {what} on {host!r} without authentication: anyone "
        f"who can reach this address {exposure}. Configure an auth driver "
        '([auth] driver = "token") or bind to 127.0.0.1'
    ])


FrontSettingsT = TypeVar("FrontSettingsT", bound=NetworkFrontSettings)


def check_network_front(
    model: type[FrontSettingsT], name: str, raw: Mapping[str, Any], auth_required: bool
) -> FrontSettingsT:
    """What a listening front's :meth:`~vmcp.transports.base.Transport.check_front` does:
    validate its ``[transports.<name>]`` table with ``model`` and refuse a non-loopback bind
    when no auth driver checks callers (:func:`refuse_insecure_bind`).

    :raises ConfigError: naming each problem.
    """
    settings = parse_front_settings(model, name, raw)
    refuse_insecure_bind(name, settings.host, auth_required)
    return settings


def split_host_header(value: str) -> str:
    """The host name of a ``Host`` header value, without port or IPv6 brackets, lowercased."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


#: header values whose verdict a policy remembers (beyond it, it starts over)
_VERDICTS_KEPT = 256


def _remember(verdicts: dict[str, bool], value: str, verdict: bool) -> bool:
    """Store one verdict, forgetting them all first when the memo is full (a client sending
    ever-new values cannot grow it without bound); return the verdict."""
    if len(verdicts) >= _VERDICTS_KEPT:
        verdicts.clear()
    verdicts[value] = verdict
    return verdict


def _printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()


class HostOriginPolicy:
    """The ``Host`` and ``Origin`` allow-lists of one front.

    :param bind_host: the address the front listens on (accepted as a ``Host`` name unless
        it is a wildcard such as ``0.0.0.0``).
    :param allowed_hosts: extra ``Host`` values (``name``, ``name:port`` or ``*``).
    :param allowed_origins: extra ``Origin`` values (``scheme://host[:port]`` or ``*``).
    """

    def __init__(
        self, bind_host: str, allowed_hosts: list[str], allowed_origins: list[str]
    ) -> None:
        self._any_host = "*" in allowed_hosts
        self._hosts = {h.strip().lower() for h in allowed_hosts}
        self._host_names = {split_host_header(h) for h in allowed_hosts if h.count(":") != 1}
        bind = bind_host.strip("[]").lower()
        if bind not in _WILDCARD_BINDS:
            self._host_names.add(bind)
        self._any_origin = "*" in allowed_origins
        self._origins = {o.strip().rstrip("/").lower() for o in allowed_origins}
        # Verdicts per header value: clients send the same few values on every request.
        self._host_verdicts: dict[str, bool] = {}
        self._origin_verdicts: dict[str, bool] = {}

    @classmethod
    def from_settings(cls, settings: NetworkFrontSettings) -> HostOriginPolicy:
        """The policy a front's settings describe."""
        return cls(settings.host, settings.allowed_hosts, settings.allowed_origins)

    def host_allowed(self, host: str | None) -> bool:
        """Whether a ``Host`` header value is acceptable (a missing one is not, unless any
        host is). Never a value that is not printable ASCII: a host is sent in its ASCII
        form, and the front may name it back (the metadata URL of an OAuth challenge)."""
        if self._any_host:
            return not host or _printable_ascii(host)
        if not host:
            return False
        verdict = self._host_verdicts.get(host)
        if verdict is None:
            verdict = _remember(self._host_verdicts, host, self._judge_host(host))
        return verdict

    def _judge_host(self, host: str) -> bool:
        if not _printable_ascii(host):
            return False
        name = split_host_header(host)
        return (
            name in LOOPBACK_NAMES
            or _ip(name) is not None
            or name in self._host_names
            or host.strip().lower() in self._hosts
        )

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """Whether an ``Origin`` header value is acceptable on a request with this ``Host``
        (absent is: not from a browser).

        Accepted: a listed origin, or the front's own, whose host and port are the ``Host``
        header (which :meth:`host_allowed` checks: a rebound attacker's name is refused there).
        Never a value that is not printable ASCII, even where any origin is: no browser sends
        one (an origin's host is serialised in its ASCII form), and an accepted origin is
        echoed in the CORS headers.
        """
        if origin is None:
            return True
        if self._any_origin:
            return _printable_ascii(origin)
        key = f"{origin}\n{host}"
        verdict = self._origin_verdicts.get(key)
        if verdict is None:
            verdict = _remember(self._origin_verdicts, key, self._judge_origin(origin, host))
        return verdict

    def _judge_origin(self, origin: str, host: str | None) -> bool:
        if not _printable_ascii(origin):
            return False
        origin = origin.strip().rstrip("/").lower()
        if origin in self._origins:
            return True
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        return (parts.scheme in ("http", "https") and host is not None and not parts.path
                and bool(parts.netloc) and parts.netloc == host.strip().lower())

    def refusal(self, host: str | None, origin: str | None) -> str | None:
        """Why a request with these ``Host`` and ``Origin`` values is refused (403), or None."""
        if not self.host_allowed(host):
            return "Forbidden: Host header not allowed"
        if not self.origin_allowed(origin, host):
            return "Forbidden: Origin not allowed"
        return None


def front_url(scheme: str, host: str, port: int, path: str) -> str:
    """``scheme://host:port/path``, with brackets around an IPv6 address."""
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}{path}"


class NetworkTransport(Transport):
    """Base of the transports whose front listens on a network address.

    A subclass names its settings model; the settings are checked, and an unauthenticated
    public bind refused, before the gateway starts anything (:meth:`check_front`).
    """

    #: the pydantic model of the ``[transports.<name>]`` table
    settings_model: type[NetworkFrontSettings] = NetworkFrontSettings
    #: a listening front answers ``/livez`` and ``/readyz`` while the gateway starts
    serves_while_starting = True

    def check_front(self, settings: Mapping[str, Any], host: FrontHost) -> None:
        """Refuse invalid settings and an unauthenticated public bind before anything starts."""
        check_network_front(self.settings_model, self.name, settings, host.auth_required)

    def front_settings(self, settings: Mapping[str, Any]) -> Any:
        """The validated settings of this front (an instance of :attr:`settings_model`)."""
        return parse_front_settings(self.settings_model, self.name, settings)

