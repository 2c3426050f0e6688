"""The Streamable HTTP front: one endpoint taking POST, GET and DELETE (MCP 2025-03-26 on).

The era is chosen per POST: a 2026-07-28 one (its body's ``_meta`` or its
``MCP-Protocol-Version`` names that era) is served statelessly by
:mod:`vmcp_transport_http.modern_server`, whatever ``Mcp-Session-Id`` it carries; a GET or
DELETE of that era gets 405. Everything below is the handshake era's shape.

* POST carries one message (or a 2025-03-26 batch). Notifications and responses get 202. A
  request gets ``text/event-stream`` when the client accepts it (progress, logs and
  server→client requests belonging to it come first, then its response), else one JSON body.
  A reply complete within ``REPLY_GRACE`` (a quick reply) leaves as one body with a
  ``Content-Length``, in one write: JSON when it holds only the responses (the spec lets a
  server answer a client accepting both either way), else the event stream. Any other
  starts streaming at its first event or when the
  grace ends, whichever comes first (headers and priming event go out then, with whatever
  events are ready); later events go out in one write per batch.
* ``initialize`` without ``Mcp-Session-Id`` opens a session; its id (cryptographically random)
  comes back in that header. Unknown or expired ids get 404; DELETE ends a session; sessions
  with nothing in flight expire after ``session_idle_timeout``. At ``max_sessions`` (or a
  principal's ``max_sessions_per_principal``) the longest-idle session resting for at least
  ``reclaim_after`` is reclaimed;
  only when none rests is a new one refused (503, or 429 for the principal), with
  ``Retry-After``.
* Pressure: beyond ``max_concurrent_requests`` POSTs at once a POST waits its turn, at most
  ``queue_timeout`` and behind at most ``max_queued_requests`` others, else gets 503 (an
  ``initialize`` waits less, and not while the loop runs late: see ``Admission``); a
  principal beyond its ``rate_limit`` (over all its sessions) gets 429; a request the
  gateway sheds (its error carries ``retryAfter``) gets 503. Each with ``Retry-After``, so
  load balancers and clients see it.
* GET opens the session's standalone stream, or with ``Last-Event-ID`` replays and resumes
  the stream that event belongs to.
* ``MCP-Protocol-Version``, when sent, must be a version vmcp speaks (400 otherwise).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from vmcp.auth.base import Principal
from vmcp.cluster.record import SessionRecord, instance_of
from vmcp.memrelease import compact_all
from vmcp.protocol.eras import MODERN_VERSIONS
from vmcp.protocol.errors import BACKEND_UNAVAILABLE
from vmcp.protocol.versions import DEFAULT_HTTP_VERSION, HANDSHAKE_VERSIONS
from vmcp.transports.base import FrontHost
from vmcp.transports.tracecontext import meta_from_headers
from vmcp_transport_http.commit import must_commit
from vmcp_transport_http.commit import start as commit_start
from vmcp_transport_http.front_app import FrontApp
from vmcp_transport_http.limits import Admission, RateLimiter, retry_after, shed_wait
from vmcp_transport_http.messages import (
    JSON_TYPE,
    SSE_TYPE,
    HttpProblem,
    decode_body,
    is_json_body,
    is_request,
    media_types,
    request_key,
    wants_sse,
)
from vmcp_transport_http.modern_server import ModernFront, is_modern_post
from vmcp_transport_http.security import read_body
from vmcp_transport_http.server import (
    SSE_HEADERS,
    add_health_routes,
    add_metadata_routes,
    authenticate,
    build_app,
)
from vmcp_transport_http.session import HttpSession, PostStream
from vmcp_transport_http.settings import DEFAULT_RATE_LIMIT, StreamableSettings
from vmcp_transport_http.shared import (
    SHARED_EVENT,
    SharedLink,
    pump_shared,
    resume_point,
    stream_instance,
)
from vmcp_transport_http.sse import encode_event
from vmcp_transport_http.stream_relay import StreamRelay
from vmcp_transport_http.streams import EventStreamResponse, SharedTimeout, encode_events, pump
from vmcp_transport_http.whole_reply import JSON_HEADERS, WholeReply

log = logging.getLogger("vmcp.transports.http")

SESSION_HEADER = "Mcp-Session-Id"
VERSION_HEADER = "MCP-Protocol-Version"
#: first revision whose clients understand a priming event (an id with empty data)
PRIMING_SINCE = "2025-11-25"
#: milliseconds a client is told to wait before reconnecting a broken stream (priming event)
RETRY_MS = 1000
#: seconds an SSE reply waits before it starts streaming: a reply complete by then leaves
#: as one body (one write); a later one gets its headers (and priming event) at this point
REPLY_GRACE = 0.05


def _sessionless(payload: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    """The ``initialize`` request a POST without a session must be; else the refusal."""
    if (isinstance(payload, dict) and is_request(payload)
            and payload.get("method") == "initialize" and request_key(payload["id"]) is not None):
        return payload
    raise HttpProblem(400, f"Bad Request: missing {SESSION_HEADER} header (send initialize first)")


def _only_id(payload: dict[str, Any] | list[dict[str, Any]]) -> str | int | None:
    """The id of the one request a POST carries, else None."""
    requests = [m for m in (payload if isinstance(payload, list) else [payload]) if is_request(m)]
    return request_key(requests[0]["id"]) if len(requests) == 1 else None


def _offered_version(initialize: dict[str, Any]) -> str:
    """The protocol version an ``initialize`` request offers."""
    params = initialize.get("params")
    version = params.get("protocolVersion") if isinstance(params, dict) else None
    return version if isinstance(version, str) else DEFAULT_HTTP_VERSION


class StreamableHttpServer:
    """Serves front clients over Streamable HTTP, one :class:`HttpSession` per client."""

    def __init__(self, host: FrontHost, settings: StreamableSettings) -> None:
        self.host = host
        self.settings = settings
        self.sessions: dict[str, HttpSession] = {}
        #: sessions with no HTTP request being served, longest idle first
        self._resting: OrderedDict[str, HttpSession] = OrderedDict()
        #: the one timer expiring idle sessions, due at the longest-idle one's deadline (a
        #: timer per session would cost each of thousands of sessions a handle in the loop)
        self._sweeper: asyncio.TimerHandle | None = None
        self._per_principal: dict[Principal, int] = {}
        rate = settings.rate_limit
        if rate is None:
            rate = DEFAULT_RATE_LIMIT if host.auth_required else 0
        self._rates = RateLimiter(rate, settings.rate_burst) if rate else None
        self._admission = Admission(settings.max_concurrent_requests,
                                    settings.max_queued_requests, settings.queue_timeout,
                                    settings.retry_after)
        self._closing: set[asyncio.Task[None]] = set()
        self._grace = SharedTimeout(REPLY_GRACE)
        self._modern = ModernFront(host, settings, self._grace)
        memory = getattr(host, "memory", None)
        if memory is not None:  # the tables a load of sessions grew shrink once it is gone
            memory.before_release(lambda: compact_all(self.sessions, self._resting,
                                                      self._per_principal))
        #: the state shared with other instances (``[cluster]``), else None
        self._cluster = getattr(host, "cluster", None)
        #: shared sessions whose standalone stream this instance delivers now
        self._streaming: set[str] = set()
        #: POST reply streams resumed on another instance than theirs (``[cluster]``)
        self._relay: StreamRelay | None = None
        if self._cluster is not None:
            self._relay = StreamRelay(self._cluster, self.sessions.get,
                                      settings.keepalive_interval, self._spawn)
            self._cluster.listen(self._from_elsewhere)
            mine = self._cluster.instance + "."
            self._cluster.session_count = lambda: sum(1 for key in self.sessions
                                                      if key.startswith(mine))

    @property
    def rate_limit(self) -> float | None:
        """POSTs a second each principal may send (None: no limit)."""
        return self._rates.rate if self._rates is not None else None

    @property
    def admission(self) -> Admission:
        """The turns POSTs take (for tests and metrics)."""
        return self._admission

    @property
    def retained_bytes(self) -> int:
        """Bytes of reply streams every session keeps for a resume (for tests and metrics)."""
        return sum(session.retained_bytes for session in self.sessions.values())

    def app(self) -> FrontApp:
        """The aiohttp application serving the endpoint."""
        app = build_app(self.settings, self.host)
        app.add_route("POST", self.settings.path, self.post)
        app.add_route("GET", self.settings.path, self.get)
        app.add_route("DELETE", self.settings.path, self.delete)
        add_metadata_routes(app, self.host, self.settings.path)
        add_health_routes(app, self.host)
        return app

    async def stop(self) -> None:
        """End every session (the front is shutting down)."""
        sessions, self.sessions = list(self.sessions.values()), {}
        self._resting.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._per_principal.clear()
        for session in sessions:
            await session.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # -- helpers --------------------------------------------------------------------------
    def _session(self, request: web.BaseRequest, principal: Principal) -> HttpSession:
        session_id = request.headers.get(SESSION_HEADER)
        if not session_id:
            raise HttpProblem(400, f"Bad Request: missing {SESSION_HEADER} header")
        session = self.sessions.get(session_id)
        # A session answers only to the caller that opened it; to anyone else it does not exist.
        if session is None or (session.principal is not principal
                               and session.principal != principal):
            raise HttpProblem(404, "Not Found: unknown or expired session")
        return session

    @staticmethod
    def _check_version(request: web.BaseRequest) -> str:
        version = request.headers.get(VERSION_HEADER)
        if version is None:
            return DEFAULT_HTTP_VERSION
        if version not in HANDSHAKE_VERSIONS:
            supported = "supported: " + ", ".join(HANDSHAKE_VERSIONS)
            raise HttpProblem(
                400, f"Bad Request: unsupported protocol version {version!r} ({supported})"
            )
        return version

    def _expire(self, session: HttpSession) -> None:
        idle = self.settings.session_idle_timeout
        log.info("session %s expired after %.0fs idle", session.id[:8], idle)
        self._discard(session)

    def _forget(self, session: HttpSession) -> bool:
        """Take a session out of the table; False when it was not (or no longer) in it."""
        if self.sessions.get(session.id) is not session:
            return False
        del self.sessions[session.id]
        self._resting.pop(session.id, None)
        left = self._per_principal[session.principal] - 1
        if left:
            self._per_principal[session.principal] = left
        else:
            del self._per_principal[session.principal]
        return True

    def _discard(self, session: HttpSession) -> None:
        self._forget(session)
        task = asyncio.get_running_loop().create_task(session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _rest(self, session: HttpSession, resting: bool) -> None:
        """Keep :attr:`_resting` in idle order as a session's HTTP requests start and end."""
        if resting:
            if self.sessions.get(session.id) is session:
                self._resting[session.id] = session
                self._resting.move_to_end(session.id)
                if self._sweeper is None:
                    self._sweeper = asyncio.get_running_loop().call_at(
                        session.idle_since + self.settings.session_idle_timeout, self._sweep)
        else:
            self._resting.pop(session.id, None)

    def _sweep(self) -> None:
        """Expire the sessions that rested ``session_idle_timeout``; set the timer again for
        the next one due. (It may fire early, when the session it was set for was used
        again meanwhile: the next one is then due later.)"""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        now, timeout = loop.time(), self.settings.session_idle_timeout
        while self._resting:
            session_id, session = next(iter(self._resting.items()))
            due = session.idle_since + timeout
            if due > now:
                self._sweeper = loop.call_at(due, self._sweep)
                return
            del self._resting[session_id]
            self._expire(session)

    def _reclaim(self, principal: Principal | None = None) -> bool:
        """End the longest-idle resting session (of ``principal`` if given); False if none."""
        after = self.settings.reclaim_after
        for session in self._resting.values():
            if not session.rested(after):
                if session.rested(0):
                    break  # the rest of the table rested less long than this one
                continue
            if principal is None or session.principal == principal:
                log.info("session %s reclaimed for a new client", session.id[:8])
                self._discard(session)
                return True
        return False

    def _open_session(self, principal: Principal, session_id: str | None = None) -> HttpSession:
        settings = self.settings
        wait = retry_after(settings.retry_after)
        held = self._per_principal.get(principal, 0)
        if held >= settings.max_sessions_per_principal and not self._reclaim(principal):
            raise HttpProblem(429, "Too Many Requests: too many open sessions for this caller",
                              headers=wait)
        if len(self.sessions) >= settings.max_sessions and not self._reclaim():
            raise HttpProblem(503, "Service Unavailable: too many open sessions", headers=wait)
        if session_id is None:
            session_id = (secrets.token_urlsafe(32) if self._cluster is None
                          else f"{self._cluster.instance}.{secrets.token_urlsafe(24)}")
        session = HttpSession(
            session_id,
            principal,
            replay_buffer=settings.replay_buffer,
            replay_bytes=settings.replay_bytes,
            retained_bytes=settings.retained_bytes,
            on_rest=self._rest,
        )
        session.handle = self.host.open_session(session, principal)
        self.sessions[session.id] = session
        self._per_principal[principal] = self._per_principal.get(principal, 0) + 1
        return session

    def _limit_rate(self, principal: Principal) -> None:
        """Spend one of the principal's tokens, or refuse the POST with 429 (when the front
        limits rates)."""
        assert self._rates is not None
        if wait := self._rates.take(principal):
            raise HttpProblem(429, "Too Many Requests: this caller's rate limit is exceeded",
                              headers=retry_after(wait))

    def _refuse_while_draining(self, payload: dict[str, Any] | list[dict[str, Any]]) -> None:
        """503 with ``Retry-After`` for new requests (the gateway is stopping); the
        notifications and responses that calls in flight still need pass."""
        messages = payload if isinstance(payload, list) else [payload]
        if any(is_request(m) for m in messages):
            raise HttpProblem(503, "Service Unavailable: this gateway is stopping",
                              headers=retry_after(self.settings.retry_after))

    # -- POST -----------------------------------------------------------------------------
    async def post(self, request: web.BaseRequest) -> web.StreamResponse:
        """Take one message (or batch) from the client, unless too many are being handled."""
        admission = self._admission
        # one that would open a session (told apart before its body is read) waits only
        # behind a short queue: see Admission
        headers = request.headers
        opening = (SESSION_HEADER not in headers
                   and headers.get(VERSION_HEADER) not in MODERN_VERSIONS)
        if not admission.try_enter() and not await admission.enter(patient=not opening):
            raise HttpProblem(503, "Service Unavailable: too many requests at once",
                              headers=retry_after(admission.retry_after()))
        admitted = _Admitted(admission)
        # one coroutine from here to _post's: every level of awaiting is paid again each
        # time the POST's task resumes
        try:
            principal = await authenticate(self.host, request)
            if not is_json_body(request):
                raise HttpProblem(415,
                                  f"Unsupported Media Type: Content-Type must be {JSON_TYPE}")
            payload = decode_body(await read_body(request, self.settings.max_message_bytes,
                                               self.settings.body_timeout))
            try:
                return await self._post(request, principal, payload, admitted)
            except HttpProblem as problem:
                if problem.request_id is None:  # a refusal names the request it refuses
                    problem.request_id = _only_id(payload)
                raise
        finally:
            admitted.release()

    async def _post(
        self,
        request: web.BaseRequest,
        principal: Principal,
        payload: dict[str, Any] | list[dict[str, Any]],
        admitted: _Admitted,
    ) -> web.StreamResponse:
        if self._rates is not None:
            self._limit_rate(principal)
        if self.host.draining:
            self._refuse_while_draining(payload)
        if is_modern_post(request.headers, payload):  # whatever Mcp-Session-Id it carries
            return await self._modern.post(request, principal, payload, admitted.release)
        if SESSION_HEADER not in request.headers:
            initialize = _sessionless(payload)
            self._check_version(request)
            sse = wants_sse(request)
            session = self._open_session(principal)
            return await self._reply(
                request, session, [initialize], [request_key(initialize["id"])], sse,
                _offered_version(initialize), opening=True)
        session = (self._session(request, principal) if self._cluster is None
                   else await self._shared_session(request, principal))
        version = self._check_version(request)
        messages = payload if isinstance(payload, list) else [payload]
        if "traceparent" in request.headers:
            messages = [meta_from_headers(m, request.headers) for m in messages]
        keys = [request_key(m["id"]) for m in messages if is_request(m)]
        if not keys:
            for message in messages:
                session.deliver(message)
            return web.Response(status=202)
        return await self._reply(request, session, messages, keys, wants_sse(request), version)

    async def _reply(
        self,
        request: web.BaseRequest,
        session: HttpSession,
        messages: list[dict[str, Any]],
        keys: list[str | int | None],
        sse: bool,
        version: str,
        *,
        opening: bool = False,
    ) -> web.StreamResponse:
        """Deliver a POST's messages (``keys``: the ids of its requests) and answer it."""
        if None in keys or len(set(keys)) != len(keys):
            raise HttpProblem(400, "Invalid Request: ids must be unique strings or integers")
        if session.in_flight(keys):  # None was refused above
            raise HttpProblem(409, "Conflict: a request with this id is already in flight")
        post = session.open_post(keys, sse=sse)  # the session is active until settled
        try:
            started, hold = None, False
            if self._cluster is not None:
                if must_commit(self.host.replay_safe, (m for m in messages if is_request(m))):
                    started = await commit_start(
                        request, {**(SSE_HEADERS if sse else {}), SESSION_HEADER: session.id},
                        sse, self._priming(session, post, version) if sse else b"")
                else:
                    hold = True
            for message in messages:
                session.deliver(message)
            if started is not None:
                response = await self._started_reply(session, post, started)
            elif not sse:
                response = await self._json_reply(session, post)
            else:
                primed = None if hold else version  # a held reply starts with no priming
                # 0: whatever was queued since the POST counts
                await self._grace.changed(post.stream, 0)
                if hold or not post.stream.finished:
                    response = await self._stream_reply(request, session, post, primed)
                else:
                    response = self._quick_reply(session, post, primed)
        finally:
            session.settle(post)
        if opening:
            if _failed(post):
                self._discard(session)  # a refused initialize leaves no session behind
            else:
                session.protocol_version = _negotiated(post)
                if self._cluster is not None:
                    await self._share(session)
        return response

    async def _stream_reply(self, request: web.BaseRequest, session: HttpSession,
                            post: PostStream, version: str | None) -> web.StreamResponse:
        """The SSE reply of a POST not answered within the grace, starting with the priming
        event ``version`` calls for. ``version`` None: the reply is held, it starts with its
        first event and no priming event (a request safe to run again, see :mod:`.commit`)."""
        stream = post.stream
        while version is None and not stream.backlog and not stream.finished:
            await stream.changed(stream.version)
        if stream.finished:
            return self._quick_reply(session, post, version)
        first = b"" if version is None else self._priming(session, post, version)
        # Headers go out at once when nothing else is ready, else with what is.
        ready = first or stream.backlog
        response = (EventStreamResponse if ready else web.StreamResponse)(
            headers={**SSE_HEADERS, SESSION_HEADER: session.id})
        await response.prepare(request)
        await pump(stream, response, 0, self.settings.keepalive_interval, first=first or None)
        return response

    def _quick_reply(self, session: HttpSession, post: PostStream,
                     version: str | None) -> WholeReply:
        """A finished reply of a client accepting SSE, in one write: one JSON body when it
        holds nothing but the responses (as the 2026-07-28 era's quick replies do: framing
        and a priming event would only make a reply already complete dearer to send and to
        read), else the whole stream as one SSE body, after the priming event ``version``
        calls for (None: none)."""
        stream = post.stream
        if (problem := _shed(post)) is not None:
            stream.mark_delivered(stream.delivered + stream.backlog)  # its body says it all
            raise problem
        if stream.backlog == len(post.ids) and not stream.delivered:
            stream.mark_delivered(stream.backlog)  # nothing is left to resume
            return _json_body(session, post)
        events, cursor = encode_events(stream, 0)
        stream.mark_delivered(cursor)
        first = b"" if version is None else self._priming(session, post, version)
        return WholeReply(first + events, headers={**SSE_HEADERS, SESSION_HEADER: session.id})

    @staticmethod
    def _priming(session: HttpSession, post: PostStream, version: str) -> bytes:
        """The priming event of a POST's SSE reply, or nothing for an older client."""
        # An id before any data lets the client resume even if nothing else reached it. A
        # client that negotiated 2025-11-25 understands it whatever version header it sends.
        newest = max(version, session.protocol_version or version)
        if newest < PRIMING_SINCE:
            return b""
        return encode_event("", event_id=post.stream.event_id(0), retry=RETRY_MS)

    async def _started_reply(self, session: HttpSession, post: PostStream,
                             response: web.StreamResponse) -> web.StreamResponse:
        """The rest of a reply started before its requests ran (see :mod:`.commit`)."""
        if post.sse:
            await pump(post.stream, response, 0, self.settings.keepalive_interval)
            return response
        try:
            reply = await self._json_reply(session, post)
            body = reply.body
        except HttpProblem as problem:
            body = problem.response().body
        await response.write_eof(body if isinstance(body, bytes) else b"")
        return response

    async def _json_reply(self, session: HttpSession, post: PostStream) -> WholeReply:
        stream = post.stream
        while not stream.finished:
            await stream.changed(stream.version)
        replies = stream.messages()
        if not replies:
            raise HttpProblem(404, "Not Found: the session ended before the request completed")
        if (problem := _shed(post)) is not None:
            raise problem
        return _json_body(session, post)

    # -- GET ------------------------------------------------------------------------------
    async def get(self, request: web.BaseRequest) -> web.StreamResponse:
        """Open the standalone stream, or resume a stream after ``Last-Event-ID``."""
        principal = await authenticate(self.host, request)
        _refuse_modern(request)
        session = (self._session(request, principal) if self._cluster is None
                   else await self._shared_session(request, principal))
        self._check_version(request)
        if not media_types(request) & {SSE_TYPE, "text/*", "*/*"}:
            raise HttpProblem(406, f"Not Acceptable: GET needs Accept: {SSE_TYPE}")
        last_event_id = request.headers.get("Last-Event-ID")
        if session.shared is not None and (last_event_id is None
                                           or last_event_id.startswith(SHARED_EVENT)):
            return await self._get_shared(request, session, resume_point(last_event_id))
        if (self._cluster is not None and last_event_id is not None
                and (owner := stream_instance(last_event_id)) is not None
                and owner != self._cluster.instance):
            assert self._relay is not None
            return await self._relay.resume(
                request, {**SSE_HEADERS, SESSION_HEADER: session.id}, session.id, owner,
                last_event_id)
        if last_event_id is None:
            stream, after = session.get_stream, session.get_stream.delivered
        else:
            found = session.find_stream(last_event_id)
            if found is None or found[0].drained(found[1]):
                # Nothing will ever follow that event: say so, or the client retries forever.
                raise HttpProblem(404, "Not Found: no stream to resume after that Last-Event-ID")
            stream, after = found
        with session.active():
            response = web.StreamResponse(headers={**SSE_HEADERS, SESSION_HEADER: session.id})
            await response.prepare(request)
            await pump(stream, response, after, self.settings.keepalive_interval)
        return response

    # -- DELETE ---------------------------------------------------------------------------
    async def delete(self, request: web.BaseRequest) -> web.Response:
        """End a session at the client's request."""
        principal = await authenticate(self.host, request)
        _refuse_modern(request)
        session = (self._session(request, principal) if self._cluster is None
                   else await self._shared_session(request, principal))
        self._check_version(request)
        self._forget(session)
        await session.close()
        if session.shared is not None:
            await self._end_everywhere(session)
        return web.Response(status=200)

    # -- sessions shared with other instances ([cluster]) ---------------------------------
    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _record(self, session: HttpSession) -> SessionRecord:
        """The record of a shared session as this instance holds it now."""
        assert self._cluster is not None and session.handle is not None
        principal = session.principal
        return SessionRecord(
            session.id, instance_of(session.id) or self._cluster.instance,
            principal.name if principal is not None else None,
            principal.persona if principal is not None else None,
            last_seen=time.time(), **session.handle.shared_fields())

    def _link(self, session: HttpSession) -> None:
        """Tie a session to the shared state (its record is written)."""
        assert self._cluster is not None and session.handle is not None
        session.shared = SharedLink(self._cluster, session.id,
                                    self.settings.session_idle_timeout, self._spawn)
        session.handle.on_change = lambda: self._spawn(self._changed(session))
        session.handle.share_as(session.id, session.active)

    async def _share(self, session: HttpSession) -> None:
        """Write the record of a session just initialized; without the shared state it is
        served by this instance only."""
        assert self._cluster is not None
        try:
            await self._cluster.save_session(self._record(session),
                                             self.settings.session_idle_timeout)
        except Exception as exc:
            log.warning("session %s is served by this instance only: %s", session.id[:12], exc)
            return
        self._link(session)

    async def _shared_session(self, request: web.BaseRequest, principal: Principal) -> HttpSession:
        """The session a request names, taken up from the shared state when another
        instance opened it; its record is renewed (at most every few seconds)."""
        assert self._cluster is not None
        session_id = request.headers.get(SESSION_HEADER)
        session = self.sessions.get(session_id) if session_id else None
        if session is None and session_id and instance_of(session_id) is not None:
            session = await self._adopt(session_id, principal)
        if session is None or session.principal != principal:
            return self._session(request, principal)  # its refusal
        if session.shared is not None and session.shared.renewal_due(
                asyncio.get_running_loop().time()):
            self._spawn(self._renew(session))
        return session

    async def _adopt(self, session_id: str, principal: Principal) -> HttpSession | None:
        """Rebuild, initialized, a session another instance opened, from its record (None:
        there is none)."""
        assert self._cluster is not None
        try:
            record = await self._cluster.load_session(session_id)
        except Exception as exc:
            raise HttpProblem(503, "Service Unavailable: shared session state unreachable",
                              headers=retry_after(self.settings.retry_after)) from exc
        session = self.sessions.get(session_id)  # taken up meanwhile by a concurrent request
        if session is not None or record is None:
            return session
        if Principal(record.principal or "", record.persona) != principal:
            return None
        session = self._open_session(principal, session_id)
        assert session.handle is not None
        session.handle.restore(record)
        session.protocol_version = record.protocol_version
        self._link(session)
        log.info("session %s taken up from instance %s", session_id[:12], record.instance)
        return session

    async def _renew(self, session: HttpSession) -> None:
        """Renew a used session's record: write it again if it was lost (Redis restarted),
        end the session here if it was ended elsewhere."""
        assert self._cluster is not None
        ttl = self.settings.session_idle_timeout
        try:
            found = await self._cluster.touch_session(session.id, ttl)
            if found is False and not session.closed:
                await self._cluster.save_session(self._record(session), ttl)
        except Exception as exc:
            log.debug("session %s: record not renewed (%s)", session.id[:12], exc)
            return
        if found is None:
            self._discard(session)

    async def _changed(self, session: HttpSession) -> None:
        """What the record keeps changed here: write it, tell the other instances."""
        assert self._cluster is not None
        if session.closed:
            return
        try:
            await self._cluster.save_session(self._record(session),
                                             self.settings.session_idle_timeout)
            await self._cluster.publish(None, {"kind": "changed", "session": session.id})
        except Exception as exc:
            log.warning("session %s: change not shared (%s)", session.id[:12], exc)

    async def _reload(self, session: HttpSession) -> None:
        """Another instance changed a session this one holds: take the record up again."""
        assert self._cluster is not None
        try:
            record = await self._cluster.load_session(session.id)
        except Exception as exc:
            log.debug("session %s: changed record not read (%s)", session.id[:12], exc)
            return
        if record is None or session.closed or session.handle is None:
            return
        session.handle.restore(record)
        if session.id in self._streaming:
            session.handle.follow(record.subscriptions)

    async def _end_everywhere(self, session: HttpSession) -> None:
        """DELETE: the record goes, and every instance lets its copy go."""
        assert self._cluster is not None
        try:
            await self._cluster.end_session(session.id, self.settings.session_idle_timeout)
            await self._cluster.publish(None, {"kind": "ended", "session": session.id})
        except Exception as exc:
            log.warning("session %s ended here only: %s", session.id[:12], exc)

    def _from_elsewhere(self, message: dict[str, Any]) -> None:
        """A message from another instance about a session this one may hold."""
        session = self.sessions.get(message.get("session"))  # type: ignore[arg-type]
        if session is None or session.handle is None:
            return
        kind = message.get("kind")
        if kind == "answer" and isinstance(answer := message.get("message"), dict):
            session.handle.handle(answer)
        elif kind == "ended":
            self._discard(session)
        elif kind == "changed":
            self._spawn(self._reload(session))

    async def _get_shared(
        self, request: web.BaseRequest, session: HttpSession, after: str | None
    ) -> web.StreamResponse:
        """A shared session's standalone stream, from its event log, on this instance: its
        backends are made to send the session's subscribed updates here too."""
        assert self._cluster is not None and session.handle is not None
        # streaming before the record is read: a change published after this read is
        # followed too (see _reload)
        self._streaming.add(session.id)
        try:
            with session.active():
                try:
                    record = await self._cluster.load_session(session.id)
                except Exception as exc:
                    log.debug("session %s: subscriptions not followed (%s)", session.id[:12],
                              exc)
                    record = None
                if record is not None:
                    session.handle.follow(record.subscriptions)
                response = web.StreamResponse(headers={**SSE_HEADERS, SESSION_HEADER: session.id})
                await response.prepare(request)
                await pump_shared(self._cluster, session.id, lambda: not session.closed,
                                  response, after, self.settings.keepalive_interval)
        finally:
            self._streaming.discard(session.id)
        return response


class _Admitted:
    """One POST's turn among those being handled (``max_concurrent_requests``). A stream
    that outlives its request (a 2026-07-28 listen) gives it up, as GET streams never take
    one."""

    __slots__ = ("_admission", "_held")

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._held = True

    def release(self) -> None:
        """Give the turn back (once)."""
        if self._held:
            self._held = False
            self._admission.leave()


def _refuse_modern(request: web.BaseRequest) -> None:
    """405 to a GET or DELETE of a 2026-07-28 client: that era has neither streams nor
    sessions to open or end (a handshake-era client's gets what its era says)."""
    if request.headers.get(VERSION_HEADER) in MODERN_VERSIONS:
        raise HttpProblem(405, "Method Not Allowed: a 2026-07-28 client only POSTs",
                          headers={"Allow": "POST"})


def _shed(post: PostStream) -> HttpProblem | None:
    """The 503 with ``Retry-After`` for a POST whose one request the gateway shed, if it was."""
    if len(post.ids) != 1:
        return None
    last = post.stream.last()  # its response, which ended the stream
    if last is None:
        return None  # the session ended before it was answered
    message = last[0]
    error = message.get("error")
    if error is None or (wait := shed_wait(error)) is None:
        return None
    return HttpProblem(503, str(error.get("message", "Service Unavailable")),
                       BACKEND_UNAVAILABLE, request_id=message["id"], headers=retry_after(wait))


def _json_body(session: HttpSession, post: PostStream) -> WholeReply:
    """The JSON reply of a POST whose stream holds only its responses: the one response, or
    a batch's as one array."""
    lines = post.stream.lines()  # encoded once, as they were queued
    body = (b"[" + b",".join(line[:-1] for line in lines) + b"]\n" if len(post.ids) > 1
            else lines[0])
    return WholeReply(body, headers={**JSON_HEADERS, SESSION_HEADER: session.id})


def _failed(post: PostStream) -> bool:
    """Whether the (single) request of a POST was answered with an error."""
    return any("error" in message for message in post.stream.messages() if "id" in message)


def _negotiated(post: PostStream) -> str | None:
    """The ``protocolVersion`` of the ``initialize`` result a POST carried, if any."""
    for message in post.stream.messages():
        result = message.get("result")
        if "id" in message and isinstance(result, dict):
            version = result.get("protocolVersion")
            return version if isinstance(version, str) else None
    return None
