"""The WebSocket back side: the gateway as a client of one remote MCP server.

A mount with ``transport = "ws"`` and a ``ws://`` or ``wss://`` ``url`` is opened with the
``mcp`` subprotocol offered and the mount's configured ``headers`` sent (never a front
client's). Opening retries transient failures (refused or reset connections, timeouts, HTTP
5xx or 429) with exponential backoff and jitter; a refusal such as 401, 403 or 404 fails at once.

A connection that drops is reported, never hidden: :meth:`WebSocketConnection.receive`
raises :class:`~vmcp.transports.base.ConnectionClosed`, so the upstream session fails every
request in flight at once and the gateway marks the replica down. The socket is not re-opened
behind the gateway's back: a new socket is a new MCP session on the server (the handshake,
subscriptions and log level start over), which only a fresh upstream session can set up.
Bringing a dropped replica back is the job of whoever supervises replicas; it calls
:meth:`~vmcp.transports.base.Transport.connect` again, which backs off as above.

A mount with ``[servers.X.oauth]`` sends its bearer token on the upgrade request. The grants,
their discovery and renewal are the HTTP transport's (``vmcp_transport_http.oauth``, which
this plugin depends on): a 401 at the upgrade renews the grant (a refresh, a new client
credentials grant or token exchange) and the upgrade is tried once more, so a token that
expired while a socket was open is renewed when it reconnects.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed as WsClosed
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol

from vmcp import __version__
from vmcp.config import MountConfig, expand_vars
from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import RpcError
from vmcp.transports.base import Connection, ConnectionClosed, JsonMessage

if TYPE_CHECKING:
    from vmcp_transport_http.oauth.contract import Authorizer

log = logging.getLogger("vmcp.transports.ws")

#: the largest message a backend may send (results can be large; the front limit is separate)
BACK_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: tries at opening a connection before giving up (waits 0.1 s, 0.2 s, 0.4 s plus jitter)
CONNECT_ATTEMPTS = 4
OPEN_TIMEOUT = 10.0
PING_INTERVAL = 20.0
PING_TIMEOUT = 20.0
CLOSE_TIMEOUT = 3.0


class WebSocketConnection(Connection):
    """An open WebSocket to one backend replica: one JSON-RPC message per frame."""

    def __init__(self, mount_id: str, websocket: ClientConnection) -> None:
        self.mount_id = mount_id
        self.websocket = websocket
        self._closing = False

    async def send(self, message: JsonMessage) -> None:
        """Send one message as a text frame."""
        try:
            await self.websocket.send(jsonrpc.encode(message))
        except WsClosed as exc:
            raise ConnectionClosed(f"websocket closed: {exc}") from exc

    async def receive(self) -> JsonMessage | bytes:
        """The next message, or the raw bytes of a frame that is not JSON."""
        try:
            data = await self.websocket.recv(decode=False)
        except WsClosed as exc:
            raise ConnectionClosed(f"websocket closed: {exc}") from exc
        try:
            return jsonrpc.decode(data)
        except RpcError:
            return data

    async def aclose(self) -> None:
        """Close with 1000 (normal closure), waiting at most ``CLOSE_TIMEOUT`` seconds."""
        if self._closing:
            return
        self._closing = True
        await self.websocket.close()


def _transient(exc: BaseException) -> bool:
    """Whether opening may succeed if tried again a moment later."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return status >= 500 or status == 429
    return isinstance(exc, OSError)  # refused, reset, unreachable, timed out


def _describe(exc: BaseException, where: str) -> str:
    if isinstance(exc, InvalidStatus):
        return f"{where} refused the WebSocket handshake with HTTP {exc.response.status_code}"
    if isinstance(exc, TimeoutError):
        return f"{where} did not complete the WebSocket handshake in {OPEN_TIMEOUT:g}s"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc}"
    return f"cannot open a WebSocket to {where}: {exc}"


async def open_connection(
    mount: MountConfig, env: dict[str, str], headers: dict[str, str],
    scope: tuple[str, str] | None = None,
) -> WebSocketConnection:
    """Open the WebSocket of a ``ws`` mount, retrying transient failures with backoff; an
    OAuth mount's upgrade carries the grant of ``scope`` (see the module's docstring).

    :raises ConnectionClosed: the URL is not ``ws://``/``wss://``, the server refused the
        handshake, or it could not be reached after ``CONNECT_ATTEMPTS`` tries.
    :raises SignInNeeded: there is no usable grant (the message names the command that
        signs in; the exception may offer the sign-in itself).
    """
    url = expand_vars(mount.url or "", env)
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConnectionClosed(
            f"mount {mount.id}: a ws mount needs a ws:// or wss:// url with a host"
        )
    where = parts.netloc.rpartition("@")[2]  # never the credentials of a user:pass@ url
    try:
        if mount.oauth is None:
            websocket = await _open(mount.id, url, where, headers)
        else:
            websocket = await _open_authorized(mount, scope, url, where, headers)
    except (OSError, InvalidHandshake, InvalidURI) as exc:
        raise ConnectionClosed(_describe(exc, where)) from exc
    return WebSocketConnection(mount.id, websocket)


async def _open_authorized(
    mount: MountConfig, scope: tuple[str, str] | None, url: str, where: str,
    headers: dict[str, str],
) -> ClientConnection:
    """:func:`_open` with the mount's bearer token, renewed and sent once more on a 401 (or
    a 403 ``insufficient_scope``, which asks for a larger grant)."""
    # imported here: authlib and the SDK's OAuth client load only for a mount that uses them
    import aiohttp
    from vmcp_transport_http.oauth.choice import authorizer_for

    # a SignInRequired goes through as it is: the gateway can run the sign-in it offers
    # through the caller's client, then connect again
    authorizer: Authorizer | None = authorizer_for(mount, scope)
    assert authorizer is not None  # the mount has oauth
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        for attempt in range(2):
            sent = await authorizer.header(http)
            try:
                return await _open(mount.id, url, where, {**headers, "Authorization": sent})
            except InvalidStatus as exc:
                response = exc.response
                challenge = response.headers.get("WWW-Authenticate")
                if not (response.status_code == 401 or (
                        response.status_code == 403
                        and "insufficient_scope" in (challenge or ""))):
                    raise
                if attempt:
                    raise authorizer.refused(response.status_code) from exc
                await authorizer.rejected(http, response.status_code, challenge, sent)
    raise AssertionError("unreachable: the second attempt returns or raises")


async def _open(mount_id: str, url: str, where: str, headers: dict[str, str]
                ) -> ClientConnection:
    """One WebSocket handshake with ``headers``, transient failures retried with backoff."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(CONNECT_ATTEMPTS),
        wait=wait_exponential_jitter(multiplier=0.1, max=1.0, jitter=0.05),
        retry=retry_if_exception(_transient),
        before_sleep=lambda state: log.info(
            "mount %s: connecting to %s failed (%s); retrying", mount_id, where,
            state.outcome.exception() if state.outcome else "?"),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await connect(
                url,
                subprotocols=[Subprotocol("mcp")],
                additional_headers=headers,
                user_agent_header=f"vmcp/{__version__}",
                compression=None,
                open_timeout=OPEN_TIMEOUT,
                ping_interval=PING_INTERVAL,
                ping_timeout=PING_TIMEOUT,
                close_timeout=CLOSE_TIMEOUT,
                max_size=BACK_MAX_MESSAGE_BYTES,
            )
    raise AssertionError("unreachable: tenacity returns or re-raises")
