"""Settings of the front servers, read from ``[transports.http]`` and ``[transports.sse]``.

What every listening front shares (bind address, port, ``Host``/``Origin`` allow-lists, the
largest message) comes from the kernel's :class:`~vmcp.transports.netsec.NetworkFrontSettings`.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from vmcp.transports.netsec import (
    IDLE_CONNECTION_TIMEOUT,
    NetworkFrontSettings,
    validate_url_path,
)


class FrontSettings(NetworkFrontSettings):
    """What both HTTP fronts share."""

    #: TCP port; 0 picks a free one (the real port is reported when ready)
    port: int = Field(3000, ge=0, le=65535)
    #: seconds between SSE keep-alive comments on an idle stream
    keepalive_interval: float = Field(15.0, gt=0)
    #: seconds a POST's body may take to arrive once its head has; a slower one is refused
    #: with 408 and its connection ends (meanwhile it holds a turn among the POSTs handled
    #: at once, so clients holding bodies back could otherwise lock everyone out)
    body_timeout: float = Field(30.0, gt=0)
    #: seconds a connection stays open with no request being served (before its first
    #: request's head is complete, or between requests); then it is closed. A stream being
    #: served is a request: it stays open
    idle_connection_timeout: float = Field(IDLE_CONNECTION_TIMEOUT, gt=0)
    #: seconds a connection may take nothing of a response (its client not reading, the
    #: buffers full) before it is dropped and the request it carries ends
    send_timeout: float = Field(30.0, gt=0)


#: POSTs a second per authenticated principal when ``rate_limit`` is unset: far above what an
#: agent's tool calls need, far below what one caller could take from every other
DEFAULT_RATE_LIMIT = 100.0


class StreamableSettings(FrontSettings):
    """Settings of the Streamable HTTP front (``[transports.http]``)."""

    #: the one MCP endpoint (POST, GET, DELETE)
    path: str = "/mcp"
    #: seconds a session with no request in flight and no open stream lives on (then 404)
    session_idle_timeout: float = Field(600.0, gt=0)
    #: most sessions open at once; beyond it the longest-idle resting session (no open stream,
    #: no request in flight, idle for ``reclaim_after``) is reclaimed, and only when none rests
    #: a new one gets 503
    max_sessions: int = Field(10_000, ge=1)
    #: most sessions one principal holds (anonymous loopback callers are one principal);
    #: beyond it that principal's longest-idle resting session is reclaimed, else 429
    max_sessions_per_principal: int = Field(2_500, ge=1)
    #: seconds a session must have rested before it may be reclaimed for a new one (a client
    #: between two calls is not abandoned)
    reclaim_after: float = Field(30.0, ge=0)
    #: events kept per SSE stream for replay after ``Last-Event-ID``
    replay_buffer: int = Field(256, ge=1)
    #: bytes of events kept per SSE stream for that replay (the oldest go first; the newest
    #: event stays, and a reply stream keeps what its client has not received yet)
    replay_bytes: int = Field(1 << 20, ge=1)
    #: bytes of ended but undelivered reply streams a session keeps for ``Last-Event-ID``
    retained_bytes: int = Field(4 << 20, ge=0)
    #: POSTs handled at once; beyond it a POST waits its turn (see the next two)
    max_concurrent_requests: int = Field(256, ge=1)
    #: POSTs that may wait for a turn; one more is refused at once with 503 and ``Retry-After``
    max_queued_requests: int = Field(2048, ge=0)
    #: seconds a POST waits for a turn before it is refused with 503 and ``Retry-After``
    queue_timeout: float = Field(0.5, ge=0)
    #: POSTs a second one principal may send on average, over all its sessions (a token
    #: bucket); beyond it 429 with ``Retry-After``. Unset: :data:`DEFAULT_RATE_LIMIT` when an
    #: auth driver identifies callers, none without one (every caller is then this machine's
    #: anonymous user, whom ``max_concurrent_requests`` already bounds). 0: no limit
    rate_limit: float | None = Field(None, ge=0)
    #: POSTs a principal may send at once above ``rate_limit`` (the bucket's size)
    rate_burst: int = Field(100, ge=1)
    #: seconds a refused client is told to wait (``Retry-After``) when nothing better is known
    retry_after: int = Field(1, ge=1)

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        return validate_url_path(value)


class LegacySseSettings(FrontSettings):
    """Settings of the deprecated HTTP+SSE front (``[transports.sse]``)."""

    #: its own default, apart from ``http`` (3000) and ``ws`` (3001), so every network front
    #: can run from one process
    port: int = Field(3002, ge=0, le=65535)
    #: where clients open their event stream (GET)
    sse_path: str = "/sse"
    #: where clients POST their messages (the ``endpoint`` event points here)
    messages_path: str = "/messages"
    #: messages queued for a client that reads too slowly before its stream is closed
    max_queued: int = Field(10_000, ge=1)

    @field_validator("sse_path", "messages_path")
    @classmethod
    def _check_paths(cls, value: str) -> str:
        return validate_url_path(value)
