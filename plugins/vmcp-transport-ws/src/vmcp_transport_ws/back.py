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
"""

from __future__ import annotations

import logging
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
    mount: MountConfig, env: dict[str, str], headers: dict[str, str]
) -> WebSocketConnection:
    """Open the WebSocket of a ``ws`` mount, retrying transient failures with backoff.

    :raises ConnectionClosed: the URL is not ``ws://``/``wss://``, the server refused the
        handshake, or it could not be reached after ``CONNECT_ATTEMPTS`` tries.
    """
    url = expand_vars(mount.url or "", env)
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConnectionClosed(
            f"mount {mount.id}: a ws mount needs a ws:// or wss:// url with a host"
        )
    where = parts.netloc.rpartition("@")[2]  # never the credentials of a user:pass@ url
    retrying = AsyncRetrying(
        stop=stop_after_attempt(CONNECT_ATTEMPTS),
        wait=wait_exponential_jitter(multiplier=0.1, max=1.0, jitter=0.05),
        retry=retry_if_exception(_transient),
        before_sleep=lambda state: log.info(
            "mount %s: connecting to %s failed (%s); retrying", mount.id, where,
            state.outcome.exception() if state.outcome else "?"),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                websocket = await connect(
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
    except (OSError, InvalidHandshake, InvalidURI) as exc:
        raise ConnectionClosed(_describe(exc, where)) from exc
    return WebSocketConnection(mount.id, websocket)
