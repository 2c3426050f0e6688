"""One Streamable HTTP client session: its SSE streams, message routing and when it rests.

The session is the :class:`~vmcp.transports.base.FrontPeer` the gateway writes to. A response,
and anything sent ``related_to`` a request, goes on the stream of the POST that carried that
request; everything else (and anything for a POST answered with plain JSON, or whose stream
has ended) goes on the session's standalone GET stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vmcp.auth.base import Principal
from vmcp.protocol.errors import REQUEST_CANCELLED
from vmcp.transports.base import FrontSessionHandle, JsonMessage
from vmcp_transport_http.messages import is_response, request_key
from vmcp_transport_http.shared import stream_key
from vmcp_transport_http.streams import EventStream

if TYPE_CHECKING:
    from vmcp_transport_http.shared import SharedLink

log = logging.getLogger("vmcp.transports.http")

#: key of the standalone (GET) stream; POST streams are numbered from 1
GET_STREAM = "0"
#: ended, undelivered POST streams kept per session so a client that lost one can replay it
RETAINED_STREAMS = 32


@dataclass(eq=False, slots=True)
class PostStream:
    """The reply stream of one POST: the requests it carried and whether it speaks SSE."""

    stream: EventStream
    pending: set[str | int]
    sse: bool
    #: request ids carried, in order (a batch's JSON reply keeps this order)
    ids: list[str | int] = field(default_factory=list)
    #: the POST's HTTP response is over (what is still undelivered waits for a resume)
    settled: bool = False


class HttpSession:
    """A client session of the Streamable HTTP front.

    Thousands may be open at once, most of them idle: what one holds is kept small (slots,
    and nothing made before it is needed)."""

    __slots__ = (
        "_active",
        "_by_key",
        "_by_request",
        "_counter",
        "_ended",
        "_idle_since",
        "_loop",
        "_on_rest",
        "_replay",
        "_replay_bytes",
        "_retain_limit",
        "closed",
        "get_stream",
        "handle",
        "id",
        "principal",
        "protocol_version",
        "retained_bytes",
        "shared",
    )

    def __init__(
        self,
        session_id: str,
        principal: Principal | None,
        *,
        replay_buffer: int,
        replay_bytes: int,
        retained_bytes: int,
        on_rest: Callable[[HttpSession, bool], None],
    ) -> None:
        """``on_rest(session, True)`` is called when its last HTTP request ends (it rests:
        its front expires it once idle long enough), ``on_rest(session, False)`` when one
        starts again."""
        self.id = session_id
        self.principal = principal
        self.handle: FrontSessionHandle | None = None
        self.closed = False
        #: the protocol version the session's ``initialize`` settled on (None until then)
        self.protocol_version: str | None = None
        #: the session's tie to other instances (``[cluster]``); None: it lives here only
        self.shared: SharedLink | None = None
        self._replay = replay_buffer
        self._replay_bytes = replay_bytes
        self._on_rest = on_rest
        self._retain_limit = retained_bytes
        #: wire bytes of the ended streams kept for a resume
        self.retained_bytes = 0
        self._idle_since = 0.0
        #: the loop the session is served on, from the first request that ends (each look-up
        #: of the running loop is a getpid system call on Python 3.11)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._active = 0
        self._counter = 0
        self.get_stream = EventStream(GET_STREAM, replay_buffer, max_bytes=replay_bytes)
        self._by_request: dict[str | int, PostStream] = {}
        self._by_key: dict[str, PostStream] = {}
        #: ended streams kept for a resume, with their size in bytes (made when one is)
        self._ended: OrderedDict[str, tuple[EventStream, int]] | None = None

    # -- the gateway's side -------------------------------------------------------------
    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Queue a message for the client on the stream it belongs to (never blocks)."""
        if self.closed:
            return
        if is_response(message):
            key = request_key(message.get("id"))
            post = self._by_request.get(key) if key is not None else None
            if post is not None:
                post.stream.append(message)
                self._answered(post, key)
                return
        elif related_to is not None:
            key = request_key(related_to)
            post = self._by_request.get(key) if key is not None else None
            if post is not None and post.sse:
                post.stream.append(message)
                return
        if self.shared is not None:
            self.shared.post(message)
            return
        self.get_stream.append(message)

    def _answered(self, post: PostStream, key: str | int) -> None:
        post.pending.discard(key)
        del self._by_request[key]
        if not self._by_request:
            self._by_request = {}  # an emptied dict keeps its table; a new one has none
        if post.pending:
            return
        post.stream.finish()
        if post.settled:
            self._end_post(post)

    def settle(self, post: PostStream) -> None:
        """The POST's HTTP response is over (the session is no longer active for it): a
        stream it left undelivered waits for a resume (bounded in count and bytes, and kept
        for another try once resumed); a delivered one, or a JSON reply, is let go."""
        self._leave()
        post.settled = True
        if post.stream.finished:
            self._end_post(post)

    def _end_post(self, post: PostStream) -> None:
        stream = post.stream
        if self._by_key.pop(stream.key, None) is None:
            return  # the session was closed meanwhile
        if not self._by_key:
            self._by_key = {}  # as in _answered
        if post.sse and not stream.drained(stream.delivered):
            self._retain(stream)

    def _retain(self, stream: EventStream) -> None:
        size = stream.buffered_bytes
        ended = self._ended
        if ended is None:
            ended = self._ended = OrderedDict()
        ended[stream.key] = (stream, size)
        self.retained_bytes += size
        while ended and (len(ended) > RETAINED_STREAMS
                         or self.retained_bytes > self._retain_limit):
            _, (_, dropped) = ended.popitem(last=False)
            self.retained_bytes -= dropped

    # -- the transport's side -----------------------------------------------------------
    def deliver(self, message: JsonMessage) -> None:
        """Pass one message from the client to the gateway.

        A request the client cancels gets no response, but on this wire only a response ends
        its stream: so the stream of a cancelled request is ended with a -32800 error.
        """
        if self.handle is None or self.closed:
            return
        if self.shared is not None and is_response(message) and self.shared.elsewhere(message):
            return
        self.handle.handle(message)
        if message.get("method") == "notifications/cancelled":
            params = message.get("params")
            key = request_key(params.get("requestId")) if isinstance(params, dict) else None
            if key is not None and key in self._by_request:
                error = {"code": REQUEST_CANCELLED, "message": "Request cancelled"}
                self.send({"jsonrpc": "2.0", "id": key, "error": error})

    def in_flight(self, keys: list[str | int]) -> bool:
        """Whether a request with one of these ids awaits its response on some stream."""
        return not self._by_request.keys().isdisjoint(keys)

    def open_post(self, keys: list[str | int], *, sse: bool) -> PostStream:
        """Register the reply stream of a POST carrying requests with these ids; the session
        is active (see :meth:`active`) until :meth:`settle` says the POST's reply is over."""
        self._enter()
        self._counter += 1
        # a shared session's stream names its instance: a Last-Event-ID of it that reaches
        # another instance is told apart from that one's own streams
        key = (str(self._counter) if self.shared is None
               else stream_key(self.shared.state.instance, self._counter))
        # A JSON reply holds only the responses asked for and is never replayed: no bound.
        stream = (EventStream(key, self._replay, max_bytes=self._replay_bytes,
                              trim_undelivered=False)
                  if sse else EventStream(key, None))
        post = PostStream(stream, set(keys), sse, keys)
        self._by_key[post.stream.key] = post
        for key in keys:
            self._by_request[key] = post
        return post

    def find_stream(self, last_event_id: str) -> tuple[EventStream, int] | None:
        """The stream a ``Last-Event-ID`` names and the sequence number to resume after."""
        key, _, seq = last_event_id.rpartition("-")
        if not seq.isdigit():
            return None
        if key == GET_STREAM:
            return self.get_stream, int(seq)
        post = self._by_key.get(key)
        if post is not None:
            return post.stream, int(seq)
        kept = self._ended.get(key) if self._ended is not None else None
        return (kept[0], int(seq)) if kept is not None else None

    def rested(self, seconds: float) -> bool:
        """No HTTP request of the session is being served, no request awaits its reply, and
        so it has been for ``seconds``."""
        if self._active or self._by_request:
            return False
        return asyncio.get_running_loop().time() - self._idle_since >= seconds

    @property
    def idle_since(self) -> float:
        """When (event-loop time) the session's last HTTP request ended."""
        return self._idle_since

    def active(self) -> _Activity:
        """Hold the session open while an HTTP request of it is being served (``with``)."""
        return _Activity(self)

    def _enter(self) -> None:
        self._active += 1
        if self._active == 1:
            self._on_rest(self, False)

    def _leave(self) -> None:
        # The idle countdown restarts here (the front keeps one timer for all its sessions).
        self._active -= 1
        if self._active or self.closed:
            return
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self._idle_since = loop.time()
        self._on_rest(self, True)

    async def close(self) -> None:
        """End the session: streams end, the gateway is told the client went away."""
        if self.closed:
            return
        self.closed = True
        self.get_stream.finish()
        for post in self._by_key.values():
            post.stream.finish()
        self._by_key.clear()
        self._by_request.clear()
        self._ended = None
        self.retained_bytes = 0
        if self.handle is not None:
            await self.handle.aclose()
            # the gateway's session points back at this one: without this the pair (and
            # what hangs off it) would wait as cyclic garbage for a rare full collection
            self.handle = None


class _Activity:
    """The ``with`` block of :meth:`HttpSession.active` (a plain class: it runs per request)."""

    __slots__ = ("_session",)

    def __init__(self, session: HttpSession) -> None:
        self._session = session

    def __enter__(self) -> None:
        self._session._enter()

    def __exit__(self, *exc_info: object) -> None:
        self._session._leave()
