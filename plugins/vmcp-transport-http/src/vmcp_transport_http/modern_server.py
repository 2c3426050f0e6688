"""2026-07-28 requests on the Streamable HTTP endpoint: one POST, one request, no session.

A modern POST is checked here (the ``_meta`` envelope's version, and the headers that
mirror the body: -32020 when they disagree), then handed to the gateway through a
stateless entry whose peer is this POST's response: the request's progress and log
notifications go out on it, then its response, and nothing else. The entry is closed once
the response is out or the client closes the stream, which in this era is the
cancellation: the backend call still in flight is cancelled with it.

A quick reply without notifications leaves as one JSON body whose HTTP status follows its
error (400 for a bad request, 404 for an unknown method, 503 when the gateway sheds load);
anything longer streams as SSE (no event ids, no resumption, keep-alive comments).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from vmcp.auth.base import Principal
from vmcp.protocol import jsonrpc
from vmcp.protocol.eras import (
    CLIENT_CAPABILITIES,
    HEADER_MISMATCH,
    MISSING_CLIENT_CAPABILITY,
    MODERN_VERSIONS,
    PROTOCOL_VERSION,
    UNSUPPORTED_PROTOCOL_VERSION,
    is_modern_request,
    modern_version,
    unsupported_version_data,
)
from vmcp.protocol.errors import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcError,
)
from vmcp.transports.base import FrontHost, JsonMessage, StatelessHandle
from vmcp.transports.tracecontext import meta_from_headers
from vmcp_transport_http.commit import must_commit
from vmcp_transport_http.commit import start as commit_start
from vmcp_transport_http.limits import retry_after, shed_wait
from vmcp_transport_http.messages import (
    SSE_TYPE,
    HttpProblem,
    wants_sse,
)
from vmcp_transport_http.modern_exchange import Exchange, response_of
from vmcp_transport_http.modern_headers import (
    PARAM_PREFIX,
    VERSION_HEADER,
    check_headers,
    check_param_headers,
)
from vmcp_transport_http.param_lookup import ParamLookup
from vmcp_transport_http.server import SSE_HEADERS
from vmcp_transport_http.settings import StreamableSettings
from vmcp_transport_http.streams import EventStream, EventStreamResponse, SharedTimeout, pump
from vmcp_transport_http.whole_reply import JSON_HEADERS, WholeReply

#: HTTP status of a modern reply carrying one of these JSON-RPC errors (others: 200)
ERROR_STATUS = {
    PARSE_ERROR: 400,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    HEADER_MISMATCH: 400,
    MISSING_CLIENT_CAPABILITY: 400,
    UNSUPPORTED_PROTOCOL_VERSION: 400,
    METHOD_NOT_FOUND: 404,
}
_PARAM_PREFIX = PARAM_PREFIX.lower()
LISTEN = "subscriptions/listen"


def is_modern_post(headers: Any, payload: Any) -> bool:
    """Whether a POST speaks the 2026-07-28 era: its body is a modern request (by
    :func:`~vmcp.protocol.eras.is_modern_request`) or its version header names a modern
    revision."""
    return is_modern_request(payload) or headers.get(VERSION_HEADER) in MODERN_VERSIONS


class ModernFront:
    """Serves the 2026-07-28 POSTs of the Streamable HTTP endpoint."""

    def __init__(self, host: FrontHost, settings: StreamableSettings, grace: SharedTimeout
                 ) -> None:
        self.host = host
        self.settings = settings
        self._grace = grace
        self._lookup = ParamLookup()
        #: behind a load balancer with other instances (``[cluster]``): see :mod:`.commit`
        self._shared = getattr(host, "cluster", None) is not None

    async def post(self, request: web.BaseRequest, principal: Principal, payload: Any,
                   release: Callable[[], None]) -> web.StreamResponse:
        """Answer one modern POST (a notification gets 202 and is dropped: on this wire
        a client cancels by closing the stream, and has nothing else to notify).

        ``release`` gives up the POST's place among those being handled: a listen's stream,
        which stays open for as long as the client wants, does so once it is streaming.
        """
        kind = jsonrpc.classify(payload) if isinstance(payload, dict) else jsonrpc.INVALID
        if kind is jsonrpc.NOTIFICATION:
            version = request.headers.get(VERSION_HEADER) or modern_version(
                payload.get("params"))
            _check_version(version, None)
            return web.Response(status=202)
        if kind is not jsonrpc.REQUEST:
            raise HttpProblem(400, "Invalid Request: a 2026-07-28 POST carries one request "
                              "or one notification")
        request_id = payload["id"]
        if type(payload["method"]) is not str or type(request_id) not in jsonrpc.ID_TYPES:
            # refused here: a response the stream could not match to its request would
            # leave the POST waiting for ever
            refusal = jsonrpc.bad_method_or_id()
            raise HttpProblem(400, refusal.message, refusal.code,
                              request_id=jsonrpc.answerable_id(request_id))
        params = payload.get("params")
        if not isinstance(params, dict):
            raise HttpProblem(400, "Invalid params: params must be an object carrying _meta",
                              INVALID_PARAMS, request_id=request_id)
        _check_envelope(request, payload["method"], params, request_id)
        sse = wants_sse(request)
        if payload["method"] == LISTEN and not sse:  # a listen's answer is a stream
            raise HttpProblem(406, f"Not Acceptable: {LISTEN} answers with {SSE_TYPE}")
        exchange = Exchange(self.settings.replay_buffer)
        handle = self.host.open_stateless(exchange, principal)
        exchange.handle = handle
        try:
            if payload["method"] == "tools/call":
                await self._check_param_headers(request, handle, exchange, principal, params,
                                                request_id)
            if "traceparent" in request.headers:
                payload = meta_from_headers(payload, request.headers)
            stream = exchange.expect(request_id)
            started, hold = None, False
            if self._shared:
                if must_commit(self.host.replay_safe, (payload,)):
                    started = await commit_start(request, SSE_HEADERS if sse else {}, sse)
                else:
                    hold = True
            handle.handle(payload)
            if started is not None:
                return await self._started_reply(stream, started, sse)
            return await self._reply(request, stream, sse,
                                     release if payload["method"] == LISTEN else None, hold)
        finally:
            await handle.aclose()

    async def _check_param_headers(
        self, request: web.BaseRequest, handle: StatelessHandle, exchange: Exchange,
        principal: Principal, params: dict[str, Any], request_id: Any,
    ) -> None:
        """Check the ``Mcp-Param-*`` headers of a ``tools/call`` against its arguments, by
        the schema the caller is shown for that tool (none found: nothing to check)."""
        arguments, name = params.get("arguments"), params.get("name")
        if not isinstance(name, str) or (arguments is not None
                                         and not isinstance(arguments, dict)):
            return  # the gateway refuses the call itself
        arguments = arguments or {}
        if not arguments and not any(header.lower().startswith(_PARAM_PREFIX)
                                     for header in request.headers):
            return
        declared = await self._lookup.declared(handle, exchange, principal, name,
                                               params["_meta"])
        if declared is None:
            return
        try:
            check_param_headers(request.headers, declared, arguments)
        except RpcError as exc:
            raise HttpProblem(400, exc.message, exc.code, request_id=request_id) from exc

    async def _started_reply(self, stream: EventStream, response: web.StreamResponse,
                             sse: bool) -> web.StreamResponse:
        """The rest of a reply started before its request ran (see :mod:`.commit`)."""
        if sse:
            await pump(stream, response, 0, self.settings.keepalive_interval)
        else:
            await response.write_eof((await response_of(stream))[1])
        return response

    async def _reply(self, request: web.BaseRequest, stream: EventStream, sse: bool,
                     release: Callable[[], None] | None, hold: bool = False
                     ) -> web.StreamResponse:
        """``hold``: the response starts with its first event (a request safe to run again,
        see :mod:`.commit`)."""
        if not sse:
            return _json(*await response_of(stream))
        await self._grace.changed(stream, 0)  # 0: whatever was queued since the POST counts
        while hold and not stream.backlog and not stream.finished:
            await stream.changed(stream.version)
        if stream.finished and stream.backlog == 1:  # only the response: one JSON body
            return _json(*stream.last())  # type: ignore[misc]  # its one event
        response = (EventStreamResponse if stream.backlog else web.StreamResponse)(
            headers=SSE_HEADERS)
        await response.prepare(request)
        if release is not None:
            release()
        await pump(stream, response, 0, self.settings.keepalive_interval)
        return response


def _check_version(version: Any, request_id: Any) -> None:
    """Refuse a version vmcp does not speak: 400 with -32022 and what it does speak."""
    if version not in MODERN_VERSIONS:
        raise HttpProblem(400, f"Unsupported protocol version: {version!r}",
                          UNSUPPORTED_PROTOCOL_VERSION, request_id=request_id,
                          data=unsupported_version_data(version))


def _check_envelope(request: web.BaseRequest, method: Any, params: dict[str, Any],
                    request_id: Any) -> None:
    """Check a modern request's ``_meta`` envelope and headers: 400 with
    -32602 for a missing envelope field, -32020 for a header that disagrees with the body,
    -32022 for a version vmcp does not speak (in that order, so a client contradicting
    itself is told so, not that its body's version is unknown)."""
    meta = params.get("_meta")
    missing = [key for key in (PROTOCOL_VERSION, CLIENT_CAPABILITIES)
               if not isinstance(meta, dict) or key not in meta]
    if missing:
        raise HttpProblem(400, f"Invalid params: _meta must carry {' and '.join(missing)}",
                          INVALID_PARAMS, request_id=request_id)
    version = meta[PROTOCOL_VERSION]
    try:
        check_headers(request.headers, method, params, version)
    except RpcError as exc:
        raise HttpProblem(400, exc.message, exc.code, request_id=request_id) from exc
    _check_version(version, request_id)


def _json(message: JsonMessage, line: bytes) -> WholeReply:
    """A reply as one JSON body (``line``, the message as its stream encoded it), its HTTP
    status following its error."""
    error = message.get("error")
    if not isinstance(error, dict):
        return WholeReply(line, headers=JSON_HEADERS)
    status, headers = ERROR_STATUS.get(error.get("code"), 200), JSON_HEADERS  # type: ignore[arg-type]
    if (wait := shed_wait(error)) is not None:
        status, headers = 503, {**JSON_HEADERS, **retry_after(wait)}
    return WholeReply(line, status=status, headers=headers)
