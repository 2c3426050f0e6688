"""The Streamable HTTP back side: vmcp as a client of a remote MCP server's endpoint.

Each request is POSTed on its own (concurrently) and its reply read as JSON (a line of its
own per message when the body comes in pieces, as some servers stream it) or as an SSE
stream, resumed with ``Last-Event-ID`` if it breaks. Notifications and responses are POSTed in
order. The session id from ``initialize`` and the negotiated ``MCP-Protocol-Version`` go on
every later request; after ``notifications/initialized`` the GET stream is opened for
unsolicited messages. A stateless backend issues no session id and may answer that GET with 404
or 405: it simply has no GET stream. A 404 once a session exists means the backend forgot it:
the connection ends so the gateway re-initializes. Closing sends DELETE.

A request whose ``_meta`` names a 2026-07-28 protocol version is sent in the modern shape
instead: its own POST with ``MCP-Protocol-Version`` from the ``_meta``, ``Mcp-Method``,
``Mcp-Name`` and the ``Mcp-Param-*`` headers of the tool's ``x-mcp-header`` arguments (learnt
from the backend's ``tools/list`` answers), no session id, no resumption (a broken stream
fails the request), and ``notifications/cancelled`` for it closes its response stream
instead of being POSTed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import aiohttp

from vmcp.protocol.eras import modern_version
from vmcp.protocol.errors import INTERNAL_ERROR
from vmcp.protocol.jsonrpc import DecodeError, decode
from vmcp.transports.base import JsonMessage, Related
from vmcp.transports.tracecontext import headers_from_meta
from vmcp_transport_http.client_pool import ClientPool
from vmcp_transport_http.connection import MAX_MESSAGE_BYTES, HttpConnection, error_reply
from vmcp_transport_http.json_lines import JsonLinesError, iter_json_messages
from vmcp_transport_http.messages import (
    JSON_TYPE,
    SSE_TYPE,
    decode_message,
    is_request,
    is_response,
)
from vmcp_transport_http.modern_request import ParamHeaders, param_headers, request_headers
from vmcp_transport_http.oauth.contract import SignInRequired

if TYPE_CHECKING:
    from vmcp_transport_http.oauth.contract import Authorizer

log = logging.getLogger("vmcp.transports.http")

SESSION_HEADER = "Mcp-Session-Id"
VERSION_HEADER = "MCP-Protocol-Version"
#: seconds before reconnecting a stream when the server suggested no ``retry``
DEFAULT_RETRY = 1.0
#: reconnections tried for a broken reply stream, and failures in a row tolerated on GET
RECONNECT_ATTEMPTS = 3
#: seconds the closing DELETE may take
DELETE_TIMEOUT = 5.0


class StreamableHttpConnection(HttpConnection):
    """A connection to one remote MCP endpoint over Streamable HTTP."""

    def __init__(
        self, pool: ClientPool, url: str, headers: dict[str, str], connect_timeout: float,
        authorizer: Authorizer | None = None,
    ) -> None:
        super().__init__(pool, url, headers, connect_timeout, authorizer)
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._initialize_id: Any = None
        self._listening = False
        #: modern requests whose response is being read, by id (cancelling closes it)
        self._modern: dict[Any, asyncio.Task[None]] = {}
        #: ids of modern ``tools/list`` requests in flight, whose answers are learnt from
        self._tool_lists: set[Any] = set()
        #: tool name -> the ``Mcp-Param-*`` headers its calls carry
        self._param_headers: dict[str, ParamHeaders] = {}

    def _mcp_headers(self, accept: str) -> dict[str, str]:
        headers = self.headers(accept)
        if self.session_id is not None:
            headers[SESSION_HEADER] = self.session_id
        if self.protocol_version is not None:
            headers[VERSION_HEADER] = self.protocol_version
        return headers

    async def send(self, message: JsonMessage) -> None:
        """POST one message: a request in the background, anything else before returning."""
        self.check_open()
        if is_request(message):
            version = modern_version(message.get("params"))
            if isinstance(version, str):
                request_id = message.get("id")
                if message.get("method") == "tools/list":
                    self._tool_lists.add(request_id)
                self._modern[request_id] = self.spawn(self._modern_exchange(message, version))
                return
            if message.get("method") == "initialize":
                self._initialize_id = message.get("id")
            self.spawn(self._exchange(message))
            return
        if self._modern and message.get("method") == "notifications/cancelled":
            params = message.get("params")
            task = self._modern.pop(params.get("requestId") if isinstance(params, dict)
                                    else None, None)
            if task is not None:
                task.cancel()  # closing the response stream is the cancellation
                return
        await self._post_one_way(message)
        if message.get("method") == "notifications/initialized" and not self._listening:
            self._listening = True
            self.spawn(self._listen())

    # -- replies --------------------------------------------------------------------------
    def _take(self, item: JsonMessage | bytes) -> None:
        """Deliver a received message, learning the protocol version from ``initialize``
        and the tools' ``Mcp-Param-*`` headers from a modern ``tools/list``."""
        if self._tool_lists and isinstance(item, dict) and item.get("id") in self._tool_lists:
            self._learn_tools(item)
        if (
            self._initialize_id is not None
            and isinstance(item, dict)
            and is_response(item)
            and item.get("id") == self._initialize_id
        ):
            self._initialize_id = None
            result = item.get("result")
            version = result.get("protocolVersion") if isinstance(result, dict) else None
            if isinstance(version, str):
                self.protocol_version = version
        self.deliver(item)

    async def _post_one_way(self, message: JsonMessage) -> None:
        try:
            async with self.authorized(
                "POST", self.url, self._mcp_headers(f"{JSON_TYPE}, {SSE_TYPE}"), json=message
            ) as response:
                if response.status == 404 and self.session_id is not None:
                    self.fail("the backend ended the session (HTTP 404)")
                elif response.status >= 300:
                    log.warning("%s: HTTP %s for a %s", self.url, response.status, _kind(message))
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.fail(f"cannot reach {self.url}: {exc}")
        except SignInRequired as exc:
            log.warning("%s: a %s was not sent: %s", self.url, _kind(message), exc)
        self.check_open()

    async def _exchange(self, message: JsonMessage) -> None:
        request_id = message.get("id")
        headers = self._mcp_headers(f"{JSON_TYPE}, {SSE_TYPE}")
        trace = headers_from_meta(message)
        if trace is not None:
            headers.update(trace)
        try:
            async with self.authorized("POST", self.url, headers, json=message) as response:
                await self._reply(message, response)
        except (aiohttp.ClientConnectorError, TimeoutError) as exc:
            self.fail(f"cannot reach {self.url}: {exc}")
        except SignInRequired as exc:
            self.deliver(error_reply(request_id, str(exc)))
        except (aiohttp.ClientError, ValueError) as exc:
            self.deliver(error_reply(request_id, f"{self.url}: {exc}"))

    def _learn_tools(self, item: JsonMessage) -> None:
        result = item.get("result")
        tools = result.get("tools") if isinstance(result, dict) else None
        for tool in tools if isinstance(tools, list) else ():
            name = tool.get("name") if isinstance(tool, dict) else None
            if isinstance(name, str):
                marked = param_headers(tool.get("inputSchema"))
                if marked:
                    self._param_headers[name] = marked
                else:
                    self._param_headers.pop(name, None)

    async def _modern_exchange(self, message: JsonMessage, version: str) -> None:
        request_id = message.get("id")
        headers = {**self.headers(f"{JSON_TYPE}, {SSE_TYPE}"),
                   **request_headers(message, version, self._param_headers)}
        trace = headers_from_meta(message)
        if trace is not None:
            headers.update(trace)
        try:
            async with self.authorized("POST", self.url, headers, json=message) as response:
                await self._reply(message, response, resume=False)
        except (aiohttp.ClientConnectorError, TimeoutError) as exc:
            self.fail(f"cannot reach {self.url}: {exc}")
        except SignInRequired as exc:
            if message.get("method") == "server/discover":
                # not an answer to probe the era with: an initialize would be refused alike
                self.fail(str(exc))
            else:
                self.deliver(error_reply(request_id, str(exc)))
        except (aiohttp.ClientError, ValueError) as exc:
            self.deliver(error_reply(request_id, f"{self.url}: {exc}"))
        finally:
            self._tool_lists.discard(request_id)
            if self._modern.get(request_id) is asyncio.current_task():
                del self._modern[request_id]

    async def _reply(self, message: JsonMessage, response: aiohttp.ClientResponse,
                     resume: bool = True) -> None:
        request_id = message.get("id")
        initialize = message.get("method") == "initialize"
        if initialize and (session_id := response.headers.get(SESSION_HEADER)):
            self.session_id = session_id
        if response.status == 404 and self.session_id is not None and not initialize:
            self.fail("the backend ended the session (HTTP 404)")
            return
        if response.status == 202 or response.status >= 300:
            self._take(await _error_from(response, request_id))
            return
        if response.content_type == JSON_TYPE and response.content_length is None:
            if not await self._read_json_lines(response, request_id):
                self._take(error_reply(request_id,
                                       f"{self.url}: reply ended without a reply"))
        elif response.content_type == JSON_TYPE:
            body = await self.read_limited(response)
            try:
                data = decode(body)
            except DecodeError as exc:
                self._take(body if request_id is None else error_reply(
                    request_id, f"{self.url}: the reply is not valid JSON-RPC: {exc.message}",
                    INTERNAL_ERROR))
                return
            for item in data if isinstance(data, list) else [data]:
                self._take(item if isinstance(item, dict) else json.dumps(item).encode())
        elif response.content_type == SSE_TYPE:
            answered, last_id, retry = await self._read_events(response, request_id, None)
            if answered:
                return
            if resume:
                await self._resume(request_id, last_id, retry)
            else:
                self._take(error_reply(request_id,
                                       f"{self.url}: reply stream ended without a reply"))
        else:
            reason = f"unexpected Content-Type {response.content_type!r} from {self.url}"
            self._take(error_reply(request_id, reason, INTERNAL_ERROR))

    async def _read_events(
        self,
        response: aiohttp.ClientResponse,
        request_id: Any,
        last_id: str | None,
        retry: float = DEFAULT_RETRY,
    ) -> tuple[bool, str | None, float]:
        """Deliver a stream's messages until it ends, or until the reply to ``request_id``.

        :param last_id: the last event id seen so far; ``retry``: the reconnection delay so far.
        :returns: whether the reply came, the last event id seen, the retry delay to use.
        """
        try:
            async for event in self.events(response):
                if event.id is not None:
                    last_id = event.id
                if event.retry is not None:
                    retry = event.retry / 1000
                if not event.data:
                    continue  # a priming event: only its id matters
                item = decode_message(event.data)
                if request_id is not None and isinstance(item, dict) and "method" in item:
                    # sent on this request's own stream: it belongs to that request
                    self.deliver(Related(item, request_id))
                    continue
                self._take(item)
                if _answers(item, request_id):
                    return True, last_id, retry
        except aiohttp.ClientError as exc:
            log.debug("%s: event stream broke: %s", self.url, exc)
        return False, last_id, retry

    async def _read_json_lines(self, response: aiohttp.ClientResponse, request_id: Any) -> bool:
        """Deliver the messages of a JSON reply sent in pieces (see ``json_lines``) until the
        reply to ``request_id``; whether it came."""
        try:
            async for item in iter_json_messages(response.content.iter_any(),
                                                 MAX_MESSAGE_BYTES):
                if not isinstance(item, dict):
                    self._take(item if isinstance(item, bytes) else json.dumps(item).encode())
                elif "method" in item and request_id is not None:
                    self.deliver(Related(item, request_id))  # on this request's own reply
                else:
                    self._take(item)
                    if _answers(item, request_id):
                        return True
        except JsonLinesError as exc:
            self._take(error_reply(request_id, f"{self.url}: {exc}", INTERNAL_ERROR))
            return True
        except aiohttp.ClientError as exc:
            log.debug("%s: reply broke: %s", self.url, exc)
        return False

    async def _resume(self, request_id: Any, last_id: str | None, retry: float) -> None:
        """Reconnect a reply stream that broke before the reply, from ``Last-Event-ID``."""
        for _ in range(RECONNECT_ATTEMPTS):
            if last_id is None or self.closed:
                break  # the server gave no event id: the stream cannot be resumed
            await asyncio.sleep(retry)
            headers = {**self._mcp_headers(SSE_TYPE), "Last-Event-ID": last_id}
            try:
                async with self.authorized("GET", self.url, headers) as response:
                    if response.status != 200 or response.content_type != SSE_TYPE:
                        break
                    answered, seen, retry = await self._read_events(
                        response, request_id, last_id, retry
                    )
                    if answered:
                        return
                    last_id = seen
            except aiohttp.ClientError as exc:
                log.debug("%s: resuming a reply stream failed: %s", self.url, exc)
            except SignInRequired as exc:
                self._take(error_reply(request_id, str(exc)))
                return
        self._take(error_reply(request_id, f"{self.url}: reply stream ended without a reply"))

    # -- the GET stream -------------------------------------------------------------------
    async def _listen(self) -> None:
        """Keep the standalone stream open for unsolicited messages, resuming after breaks."""
        last_id: str | None = None
        retry = DEFAULT_RETRY
        failures = 0
        while failures < RECONNECT_ATTEMPTS and not self.closed:
            headers = self._mcp_headers(SSE_TYPE)
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            try:
                async with self.authorized("GET", self.url, headers) as response:
                    if response.status == 405 or (response.status == 404
                                                  and self.session_id is None):
                        log.info("%s: no GET stream (HTTP %s); replies come on each POST",
                                 self.url, response.status)
                        return  # e.g. a stateless server
                    if response.status == 404 and last_id is None:
                        self.fail("the backend ended the session (HTTP 404)")
                        return
                    if response.status == 200 and response.content_type == SSE_TYPE:
                        failures = 0
                        _, last_id, retry = await self._read_events(response, None, last_id, retry)
                    else:
                        failures += 1
                        last_id = None
            except aiohttp.ClientConnectorError as exc:
                self.fail(f"cannot reach {self.url}: {exc}")
                return
            except aiohttp.ClientError as exc:
                log.debug("%s: GET stream failed: %s", self.url, exc)
                failures += 1
            except SignInRequired as exc:
                log.warning("%s: no GET stream: %s", self.url, exc)
                return
            await asyncio.sleep(retry)
        if failures:
            log.warning("%s: giving up on the GET stream after %d failures", self.url, failures)

    # -- closing --------------------------------------------------------------------------
    async def _end_session(self) -> None:
        if self.session_id is None:
            return
        try:
            async with self.authorized(
                "DELETE",
                self.url,
                self._mcp_headers(f"{JSON_TYPE}, {SSE_TYPE}"),
                timeout=aiohttp.ClientTimeout(total=DELETE_TIMEOUT),
            ) as response:
                if response.status not in (200, 202, 204, 404, 405):
                    log.info("%s: DELETE answered HTTP %s", self.url, response.status)
        except (aiohttp.ClientError, TimeoutError, SignInRequired) as exc:
            log.debug("%s: DELETE failed: %s", self.url, exc)


async def _error_from(response: aiohttp.ClientResponse, request_id: Any) -> JsonMessage:
    """The reply for a request refused at the HTTP level: the server's JSON-RPC error if any."""
    if response.content_type == JSON_TYPE:
        try:
            body = await response.json()
        except (aiohttp.ClientError, ValueError):
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return {"jsonrpc": "2.0", "id": request_id, "error": body["error"]}
    if response.status == 202:
        return error_reply(request_id, "the backend answered a request with 202", INTERNAL_ERROR)
    return error_reply(request_id, f"the backend answered HTTP {response.status}", INTERNAL_ERROR)


def _answers(item: JsonMessage | bytes, request_id: Any) -> bool:
    """Whether ``item`` is the response to the request ``request_id`` (None: to nothing)."""
    return (
        request_id is not None
        and isinstance(item, dict)
        and is_response(item)
        and item.get("id") == request_id
    )


def _kind(message: JsonMessage) -> str:
    return str(message.get("method") or "response")
