"""The deprecated HTTP+SSE front (MCP 2024-11-05), for clients that predate Streamable HTTP.

A client opens ``GET /sse``; the first event, ``endpoint``, names the URL it POSTs its
messages to (``/messages?session_id=...``); every message for it, responses included, comes
as a ``message`` event on that one stream. The session lives as long as the stream.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vmcp.auth.base import Principal
from vmcp.transports.base import FrontHost, FrontSessionHandle, JsonMessage
from vmcp.transports.tracecontext import meta_from_headers
from vmcp_transport_http.front_app import FrontApp
from vmcp_transport_http.messages import JSON_TYPE, HttpProblem, decode_body, is_json_body
from vmcp_transport_http.security import read_body
from vmcp_transport_http.server import (
    SSE_HEADERS,
    add_health_routes,
    authenticate,
    build_app,
)
from vmcp_transport_http.settings import LegacySseSettings
from vmcp_transport_http.sse import encode_event
from vmcp_transport_http.streams import EventStream, pump

log = logging.getLogger("vmcp.transports.sse")


class LegacyPeer:
    """The gateway's view of one legacy client: everything goes on its one stream."""

    def __init__(self, stream: EventStream, max_queued: int) -> None:
        self.stream = stream
        self._max_queued = max_queued

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Queue a message (never blocks); a client too far behind has its stream ended."""
        if self.stream.backlog >= self._max_queued:
            log.warning("client reads too slowly (%d messages queued): closing", self._max_queued)
            self.stream.finish()
            return
        self.stream.append(message)


@dataclass(eq=False)
class LegacySession:
    """One legacy client: who it is and where its messages go."""

    principal: Principal
    handle: FrontSessionHandle


class LegacySseServer:
    """Serves front clients over HTTP+SSE."""

    def __init__(self, host: FrontHost, settings: LegacySseSettings) -> None:
        self.host = host
        self.settings = settings
        self.sessions: dict[str, LegacySession] = {}
        self._streams: set[EventStream] = set()

    def app(self) -> FrontApp:
        """The aiohttp application serving both endpoints."""
        app = build_app(self.settings, self.host)
        app.add_route("GET", self.settings.sse_path, self.open_stream)
        app.add_route("POST", self.settings.messages_path, self.post_message)
        add_health_routes(app, self.host)
        return app

    async def stop(self) -> None:
        """End every client's stream (the front is shutting down)."""
        for stream in self._streams:
            stream.finish()

    async def open_stream(self, request: web.BaseRequest) -> web.StreamResponse:
        """A new client: open its session and stream until it goes away."""
        principal = await authenticate(self.host, request)
        session_id = secrets.token_urlsafe(32)
        stream = EventStream("sse", self.settings.max_queued + 1, with_ids=False)
        response = web.StreamResponse(headers=SSE_HEADERS)
        await response.prepare(request)
        handle = self.host.open_session(LegacyPeer(stream, self.settings.max_queued), principal)
        self.sessions[session_id] = LegacySession(principal, handle)
        self._streams.add(stream)
        try:
            endpoint = f"{self.settings.messages_path}?session_id={session_id}"
            first = encode_event(endpoint, event="endpoint")
            await pump(stream, response, 0, self.settings.keepalive_interval, first=first)
        finally:
            del self.sessions[session_id]
            self._streams.discard(stream)
            stream.finish()
            await handle.aclose()
        return response

    async def post_message(self, request: web.BaseRequest) -> web.Response:
        """One message (or batch) from a client, for the session named in the query."""
        principal = await authenticate(self.host, request)
        session_id = request.query.get("session_id")
        if not session_id:
            raise HttpProblem(400, "Bad Request: session_id query parameter required")
        session = self.sessions.get(session_id)
        if session is None or session.principal != principal:
            raise HttpProblem(404, "Not Found: unknown or closed session")
        if not is_json_body(request):
            raise HttpProblem(415, f"Unsupported Media Type: Content-Type must be {JSON_TYPE}")
        payload = decode_body(await read_body(request, self.settings.max_message_bytes,
                                           self.settings.body_timeout))
        messages = payload if isinstance(payload, list) else [payload]
        if "traceparent" in request.headers:  # W3C trace context of this POST's requests
            messages = [meta_from_headers(m, request.headers) for m in messages]
        for message in messages:
            session.handle.handle(message)
        return web.Response(status=202, text="Accepted")
