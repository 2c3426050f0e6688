"""What both HTTP back connections share: the inbox, background tasks, closing, the pool lease."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp

from vmcp.protocol.errors import BACKEND_UNAVAILABLE
from vmcp.transports.base import Connection, ConnectionClosed, JsonMessage, Related
from vmcp.transports.signin import SignInNeeded
from vmcp_transport_http.client_pool import ClientPool
from vmcp_transport_http.messages import decode_message
from vmcp_transport_http.sse import ServerSentEvent, iter_events

if TYPE_CHECKING:
    from vmcp_transport_http.oauth.contract import Authorizer

log = logging.getLogger("vmcp.transports.http")

#: the largest message (JSON body or SSE event) accepted from a backend
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: seconds to establish a TCP connection when the mount sets no startup timeout
CONNECT_TIMEOUT = 20.0
_END = object()


def error_reply(request_id: Any, message: str, code: int = BACKEND_UNAVAILABLE) -> JsonMessage:
    """A JSON-RPC error response standing in for one the backend could not give."""
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


class HttpConnection(Connection):
    """A connection whose messages arrive from HTTP responses read by background tasks."""

    def __init__(
        self, pool: ClientPool, url: str, headers: dict[str, str], connect_timeout: float,
        authorizer: Authorizer | None = None,
    ) -> None:
        """:param authorizer: where the bearer token of an OAuth mount comes from."""
        self.url = url
        self._authorizer = authorizer
        self._pool = pool
        self._http = pool.acquire()
        self._extra_headers = dict(headers)
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout)
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._closed: str | None = None
        self._released = False
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the gateway's side ---------------------------------------------------------------
    async def receive(self) -> JsonMessage | Related | bytes:
        """The next message from the backend; :class:`ConnectionClosed` once it is gone."""
        item = await self._inbox.get()
        if item is _END:
            self._inbox.put_nowait(_END)  # every later receive() ends the same way
            raise ConnectionClosed(self._closed or "closed")
        return item

    async def aclose(self) -> None:
        """Stop reading, end the remote session where the wire has one, release the pool."""
        if self._released:
            return
        self._released = True
        self.fail("closed by the gateway", quiet=True)
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self._end_session()
        finally:
            await self._pool.release()

    async def _end_session(self) -> None:
        """Tell the backend the session is over (nothing by default)."""

    # -- for subclasses -------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """Whether the connection has ended (background readers stop retrying)."""
        return self._closed is not None

    def check_open(self) -> None:
        """Raise :class:`ConnectionClosed` if the connection has ended."""
        if self._closed is not None:
            raise ConnectionClosed(self._closed)

    def deliver(self, item: JsonMessage | Related | bytes) -> None:
        """Hand one received message to :meth:`receive`."""
        if self._closed is None:
            self._inbox.put_nowait(item)

    def deliver_text(self, data: str | bytes) -> None:
        """Decode one received body or event and hand it over (raw bytes if not JSON)."""
        self.deliver(decode_message(data))

    def fail(self, reason: str, *, quiet: bool = False) -> None:
        """End the connection: :meth:`receive` raises once the queued messages are read."""
        if self._closed is None:
            self._closed = reason
            self._inbox.put_nowait(_END)
            if not quiet:
                log.info("%s: connection ended: %s", self.url, reason)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a reader in the background; an unexpected error ends the connection."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._reaped)
        return task

    def _reaped(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.fail(f"{type(exc).__name__}: {exc}")

    def headers(self, accept: str) -> dict[str, str]:
        """The mount's headers plus ``Accept`` (subclasses add their own)."""
        return {**self._extra_headers, "Accept": accept}

    def request(
        self, method: str, url: str, headers: dict[str, str], **kwargs: Any
    ) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        """One HTTP request on the pooled session; redirects are never followed.

        A redirect could carry the mount's credentials to another origin, so it is an error.
        """
        kwargs.setdefault("timeout", self._timeout)
        return self._http.request(method, url, headers=headers, allow_redirects=False, **kwargs)

    @asynccontextmanager
    async def authorized(
        self, method: str, url: str, headers: dict[str, str], **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """:meth:`request` with the mount's bearer token, when it signs in with OAuth.

        A 401 lets the authorizer renew the grant and the request is sent once more, a 403
        ``insufficient_scope`` asks for a larger grant;
        :class:`~vmcp_transport_http.oauth.authorizer.SignInRequired` says when either fails.
        Any other 403 is the backend's answer, passed on as it is.
        """
        auth = self._authorizer
        if auth is None:
            async with self.request(method, url, headers, **kwargs) as response:
                yield response
            return
        for attempt in range(2):
            sent = await self._bearer(auth)
            async with self.request(method, url, {**headers, "Authorization": sent},
                                    **kwargs) as response:
                if _refused(response):
                    if attempt:
                        raise auth.refused(response.status)
                    await self._rejected(auth, response, sent)
                    continue
                yield response
                return

    async def _bearer(self, auth: Authorizer) -> str:
        try:
            return await auth.header(self._http)
        except SignInNeeded as exc:
            self._lost(exc)
            raise

    async def _rejected(self, auth: Authorizer, response: aiohttp.ClientResponse,
                        sent: str) -> None:
        try:
            await auth.rejected(self._http, response.status,
                                response.headers.get("WWW-Authenticate"), sent)
        except SignInNeeded as exc:
            self._lost(exc)
            raise

    def _lost(self, exc: SignInNeeded) -> None:
        """A refusal while sending: when no grant is left, the connection ends (after the
        refused request's answer is delivered) and says a sign-in is needed, so that the
        caller's next connection is made after one."""
        if exc.lost and self.sign_in is None:
            self.sign_in = exc
            asyncio.get_running_loop().call_soon(self.fail, str(exc))

    async def open_stream(self, url: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """Start a GET whose response the caller keeps open (and must ``close()``), with the
        bearer token and the one retry of :meth:`authorized`."""
        auth = self._authorizer
        for attempt in range(2):
            sent = await self._bearer(auth) if auth is not None else None
            response = await self._http.get(
                url, headers=headers if sent is None else {**headers, "Authorization": sent},
                allow_redirects=False, timeout=self._timeout)
            if auth is None or sent is None or not _refused(response):
                return response
            response.close()
            if attempt:
                raise auth.refused(response.status)
            await self._rejected(auth, response, sent)
        raise AssertionError("unreachable: the second attempt returns or raises")

    @staticmethod
    def events(response: aiohttp.ClientResponse) -> AsyncIterator[ServerSentEvent]:
        """The SSE events of a response body."""
        return iter_events(response.content.iter_any(), MAX_MESSAGE_BYTES)

    @staticmethod
    async def read_limited(response: aiohttp.ClientResponse) -> bytes:
        """A response body of at most :data:`MAX_MESSAGE_BYTES` (``ValueError`` beyond)."""
        body = bytearray()
        async for chunk in response.content.iter_any():
            body += chunk
            if len(body) > MAX_MESSAGE_BYTES:
                raise ValueError(f"response body larger than {MAX_MESSAGE_BYTES} bytes")
        return bytes(body)


def _refused(response: aiohttp.ClientResponse) -> bool:
    """Whether the backend refused the bearer token: 401, or 403 ``insufficient_scope``."""
    if response.status == 401:
        return True
    return response.status == 403 and "insufficient_scope" in response.headers.get(
        "WWW-Authenticate", "")
