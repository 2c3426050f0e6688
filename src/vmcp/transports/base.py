"""The transport driver interface (entry-point group ``vmcp.transports``).

A transport moves JSON-RPC messages, one ``dict`` each, over one wire format. It has two sides:

* **front**: :meth:`Transport.serve` accepts client connections and, for each, asks the
  :class:`FrontHost` for a session and feeds it the client's messages;
* **back**: :meth:`Transport.connect` opens a :class:`Connection` to one backend replica.

A transport never interprets MCP: ids, names and sessions are the gateway's business.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from vmcp.auth.base import Principal
    from vmcp.cluster.base import SharedState
    from vmcp.cluster.record import SessionRecord
    from vmcp.config import MountConfig, VmcpConfig
    from vmcp.transports.signin import SignInNeeded

JsonMessage = dict[str, Any]


class Related(NamedTuple):
    """A message a backend sent on the response stream of one of the gateway's requests.

    Only a wire with a stream per request (Streamable HTTP) can say this; a connection
    delivers such a message wrapped in ``Related`` instead of as a bare ``dict``, and the
    upstream session attributes it to whoever made that request, never by a guess.
    """

    #: the backend's request or notification
    message: JsonMessage
    #: the gateway-side JSON-RPC id of the request whose stream carried it
    request_id: Any


class ConnectionClosed(Exception):
    """The other end of a connection went away; carries a human-readable reason."""


class Connection(ABC):
    """A message channel to one backend replica (the client side of one MCP connection)."""

    #: set when the connection ended because a person must sign in (again) before a new
    #: one can work: the backend refused its grant and the grant cannot be renewed
    sign_in: SignInNeeded | None = None

    @abstractmethod
    async def send(self, message: JsonMessage) -> None:
        """Send one message; raise :class:`ConnectionClosed` when the backend is gone."""

    def send_nowait(self, message: JsonMessage) -> bool:
        """Send without waiting when the wire allows it (a pipe write); return False if not.

        The gateway calls this first on its hot path and falls back to :meth:`send`.
        Raise :class:`ConnectionClosed` when the backend is gone.
        """
        return False

    def start_push(
        self,
        on_message: Callable[[JsonMessage | bytes], None],
        on_closed: Callable[[str], None],
    ) -> bool:
        """Deliver every message to ``on_message`` as it arrives, instead of :meth:`receive`.

        ``on_closed(reason)`` is called once at the end of the stream. Return False when the
        connection only supports :meth:`receive` (the default); the gateway then reads in a
        task of its own.
        """
        return False

    @abstractmethod
    async def receive(self) -> JsonMessage | Related | bytes:
        """Return the next message, or the raw bytes of one that is not valid JSON.

        A backend-initiated message carried by one request's response stream comes as
        :class:`Related`.

        Raise :class:`ConnectionClosed` at the end of the stream.
        """

    @abstractmethod
    async def aclose(self) -> None:
        """Close politely (for a process: close stdin, wait, SIGTERM, SIGKILL). Idempotent."""


class FrontPeer(Protocol):
    """What a front transport gives the gateway for one client connection."""

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Queue one message for the client without blocking.

        ``related_to`` is the id of the client request this message belongs to (progress, a
        log line, a sampling request), or None; stream transports ignore it, HTTP uses it to
        pick the response stream.
        """


class StatelessHandle(Protocol):
    """What the gateway gives a front transport for one stateless 2026-07-28 request."""

    def handle(self, message: JsonMessage) -> None:
        """Take the request (and the look-ups the front makes for it)."""

    async def aclose(self) -> None:
        """The response stream closed: cancel what still runs for the request."""


class FrontSessionHandle(Protocol):
    """What the gateway gives a front transport for one client connection."""

    #: called when what a shared session's record keeps changed (``[cluster]`` only)
    on_change: Callable[[], None] | None
    def share_as(self, shared_id: str, hold: Callable[[], AbstractContextManager[None]]
                 ) -> None:
        """The session is shared with the deployment's other instances (``[cluster]``),
        which know it as ``shared_id``; ``hold`` keeps it from expiring here while the
        ``with`` block it returns runs (a request another instance forwarded for it)."""

    def handle(self, message: JsonMessage) -> None:
        """Take one decoded message from the client."""

    def handle_bytes(self, data: bytes) -> None:
        """Take one raw message (a line or frame); malformed JSON gets a -32700 reply."""

    async def aclose(self) -> None:
        """The client went away: cancel its work and release its subscriptions."""

    def shared_fields(self) -> dict[str, Any]:
        """What a shared session's record keeps of the session (``[cluster]`` only)."""

    def restore(self, record: SessionRecord) -> None:
        """Serve, initialized, the session another instance opened (``[cluster]`` only)."""

    def follow(self, routes: list[tuple[str, str]]) -> None:
        """Hold the record's resource subscriptions on this instance (``[cluster]`` only)."""


class FrontHost(Protocol):
    """The gateway, as seen by a front transport."""

    @property
    def config(self) -> VmcpConfig:
        """The gateway's effective configuration (read only)."""

    @property
    def auth_required(self) -> bool:
        """True when an auth driver that really checks credentials is configured."""

    def replay_safe(self, message: JsonMessage) -> bool:
        """Whether running request ``message`` a second time has no consequence, so that a
        load balancer may send it again elsewhere (asked with ``[cluster]`` only)."""

    @property
    def cluster(self) -> SharedState | None:
        """The state shared with the deployment's other instances; None without ``[cluster]``
        (a front then keeps every session in memory)."""

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Authenticate a remote connection from its headers; raise ``AuthError`` to refuse."""

    def readiness(self) -> list[str]:
        """Why the gateway is not ready to serve, in words fit for an unauthenticated
        probe; empty when it is ready (what a front's ``/readyz`` answers)."""

    async def started(self) -> None:
        """Return once the gateway has started: its configured mounts are up or failed for
        good. A front that listens during start-up holds its clients' requests until then."""

    @property
    def draining(self) -> bool:
        """True once the gateway was asked to stop: calls in flight finish, a front refuses
        new requests (HTTP: 503 with ``Retry-After``, so a load balancer tries elsewhere)."""

    def open_session(
        self, peer: FrontPeer, principal: Principal | None = None, front: str | None = None
    ) -> FrontSessionHandle:
        """Start a session for a new client connection of the front transport ``front``
        (the stdio front names itself: its session keeps the front snapshot)."""

    def open_stateless(
        self, peer: FrontPeer, principal: Principal | None = None
    ) -> StatelessHandle:
        """Take in one 2026-07-28 request that has no connection to keep state on (a
        Streamable HTTP POST): what belongs to it goes to ``peer``."""


class Transport(ABC):
    """A transport driver. Instances are created once per process with no arguments."""

    #: the driver name used in configuration (``transport = "stdio"``)
    name: str = ""
    #: True: :meth:`serve` runs while the gateway starts its mounts, so that health probes
    #: are answered during start-up; the front holds client requests until
    #: :meth:`FrontHost.started` returns. False (stdio): served once the gateway has started.
    serves_while_starting: bool = False

    def check_front(  # noqa: B027 (optional: the default accepts every setting)
        self, settings: Mapping[str, Any], host: FrontHost
    ) -> None:
        """Refuse front settings that cannot or must not be served, before anything starts.

        ``vmcp start`` calls this for every front it is about to serve before it spawns any
        backend, so that a bad ``[transports.<name>]`` table (invalid values, a non-loopback
        bind without an auth driver) fails at once instead of after every mount has started.
        The default accepts everything; :meth:`serve` still gets the same settings and may
        check them again.

        :param settings: this transport's table from the ``[transports.<name>]`` config.
        :param host: the gateway that would be served (e.g. its ``auth_required``).
        :raises ConfigError: naming each problem.
        """

    @abstractmethod
    async def serve(
        self,
        host: FrontHost,
        settings: Mapping[str, Any],
        ready: Callable[[str], Awaitable[None] | None],
    ) -> None:
        """Serve front clients until cancelled.

        :param host: where new client connections get their session.
        :param settings: this transport's table from the ``[transports.<name>]`` config.
        :param ready: call once listening, with a description of where (e.g. a URL).
        """

    @abstractmethod
    async def connect(
        self, mount: MountConfig, env: dict[str, str], headers: dict[str, str],
        scope: tuple[str, str] | None = None,
    ) -> Connection:
        """Open a connection to one replica of a backend.

        :param mount: the mount's configuration.
        :param env: environment for a spawned process (already expanded).
        :param headers: headers for a remote backend (credentials from config, never the
            front client's).
        :param scope: who the connection serves alone, ``("session", id)`` or
            ``("persona", name)`` for an isolated mount, None when every caller shares it
            (a driver that signs in per caller picks the grant by it; the caller itself
            is :data:`vmcp.auth.base.connecting_for` while an isolated connection opens).
        """
