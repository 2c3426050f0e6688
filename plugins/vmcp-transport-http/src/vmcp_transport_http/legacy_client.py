"""The deprecated HTTP+SSE back side: vmcp as a client of a 2024-11-05 style server.

Opening GETs the event stream and waits for its ``endpoint`` event (which must stay on the
same origin); messages are then POSTed, in order, to that endpoint, and every message from
the server arrives on the stream. The stream ending, or a 404 from the endpoint, ends the
connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import aiohttp

from vmcp.transports.base import ConnectionClosed, JsonMessage
from vmcp_transport_http.client_pool import ClientPool
from vmcp_transport_http.connection import HttpConnection, error_reply
from vmcp_transport_http.messages import JSON_TYPE, SSE_TYPE, is_request
from vmcp_transport_http.oauth.contract import SignInRequired
from vmcp_transport_http.sse import ServerSentEvent

if TYPE_CHECKING:
    from vmcp_transport_http.oauth.contract import Authorizer

log = logging.getLogger("vmcp.transports.sse")


class LegacySseConnection(HttpConnection):
    """A connection to one remote server over HTTP+SSE."""

    def __init__(
        self, pool: ClientPool, url: str, headers: dict[str, str], connect_timeout: float,
        authorizer: Authorizer | None = None,
    ) -> None:
        super().__init__(pool, url, headers, connect_timeout, authorizer)
        self.endpoint: str | None = None
        self._stream: aiohttp.ClientResponse | None = None

    @classmethod
    async def open(
        cls, pool: ClientPool, url: str, headers: dict[str, str], timeout: float,
        authorizer: Authorizer | None = None,
    ) -> LegacySseConnection:
        """Connect and wait (at most ``timeout`` seconds) for the ``endpoint`` event.

        :raises ConnectionClosed: naming why the server could not be used.
        """
        connection = cls(pool, url, headers, timeout, authorizer)
        try:
            await asyncio.wait_for(connection._start(), timeout)
        except (aiohttp.ClientError, TimeoutError, ValueError, ConnectionClosed,
                SignInRequired) as exc:
            await connection.aclose()
            reason = str(exc) or "no endpoint event in time"
            raise ConnectionClosed(f"cannot open {url}: {reason}") from exc
        return connection

    async def _start(self) -> None:
        self._stream = await self.open_stream(self.url, self.headers(SSE_TYPE))
        if self._stream.status != 200 or self._stream.content_type != SSE_TYPE:
            raise ConnectionClosed(
                f"HTTP {self._stream.status} ({self._stream.content_type}), not an event stream"
            )
        events = self.events(self._stream)
        async for event in events:
            if event.event == "endpoint":
                self.endpoint = self._same_origin(urljoin(self.url, event.data.strip()))
                break
        else:
            raise ConnectionClosed("the event stream ended before the endpoint event")
        self.spawn(self._read(events))

    def _same_origin(self, endpoint: str) -> str:
        ours, theirs = urlsplit(self.url), urlsplit(endpoint)
        if (ours.scheme, ours.netloc) != (theirs.scheme, theirs.netloc):
            raise ConnectionClosed(f"endpoint {endpoint} is on another origin")
        return endpoint

    async def _read(self, events: AsyncIterator[ServerSentEvent]) -> None:
        try:
            async for event in events:
                if event.event == "message" and event.data:
                    self.deliver_text(event.data)
        except aiohttp.ClientError as exc:
            self.fail(f"event stream broke: {exc}")
        self.fail("the backend closed its event stream")

    async def send(self, message: JsonMessage) -> None:
        """POST one message to the endpoint and wait for it to be accepted."""
        self.check_open()
        assert self.endpoint is not None  # set by open()
        try:
            async with self.authorized(
                "POST", self.endpoint, self.headers(JSON_TYPE), json=message
            ) as response:
                if response.status == 404:
                    self.fail("the backend forgot the session (HTTP 404)")
                elif response.status >= 300:
                    reason = f"the backend answered HTTP {response.status}"
                    if is_request(message):
                        self.deliver(error_reply(message.get("id"), reason))
                    else:
                        log.warning("%s: %s", self.endpoint, reason)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.fail(f"cannot reach {self.endpoint}: {exc}")
        except SignInRequired as exc:
            if is_request(message):
                self.deliver(error_reply(message.get("id"), str(exc)))
            else:
                log.warning("%s: a message was not sent: %s", self.endpoint, exc)
        self.check_open()

    async def _end_session(self) -> None:
        if self._stream is not None:
            self._stream.close()
