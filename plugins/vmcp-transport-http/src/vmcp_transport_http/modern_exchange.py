"""The peer a stateless 2026-07-28 request's entry writes to: that request's response stream."""

from __future__ import annotations

from typing import Any

from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import METHOD_NOT_FOUND, RpcError
from vmcp.transports.base import JsonMessage, StatelessHandle
from vmcp_transport_http.streams import EventStream


class Exchange:
    """The :class:`~vmcp.transports.base.FrontPeer` of one stateless request: a stream
    that carries only what belongs to the request it expects (its notifications, then its
    response, which ends the stream)."""

    __slots__ = ("_limit", "handle", "request_id", "stream")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.handle: StatelessHandle | None = None
        self.request_id: Any = None
        self.stream: EventStream | None = None

    def expect(self, request_id: Any) -> EventStream:
        """A fresh stream for the request ``request_id``, about to be handled."""
        self.request_id = request_id
        self.stream = EventStream("modern", self._limit, with_ids=False)
        return self.stream

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Take one message of the gateway's for the client."""
        kind = jsonrpc.classify(message)
        if kind is jsonrpc.REQUEST:
            # This era has no server->client requests: whoever asked gets a refusal at
            # once rather than waiting for an answer that cannot come.
            assert self.handle is not None
            self.handle.handle(jsonrpc.error(message["id"], RpcError(
                METHOD_NOT_FOUND, "a 2026-07-28 client cannot be sent requests")))
            return
        stream = self.stream
        if stream is None:
            return  # nothing was handed in yet: nothing can belong to it
        if kind is jsonrpc.RESPONSE:
            if message.get("id") == self.request_id:
                stream.append(message)
                stream.finish()
        elif related_to is not None and related_to == self.request_id:
            stream.append(message)
        # anything else (list changes, unrelated logs) has no stream here: it is dropped


async def response_of(stream: EventStream) -> tuple[JsonMessage, bytes]:
    """The response that ends ``stream``, once it has come, and its encoded line."""
    while not stream.finished:
        await stream.changed(stream.version)
    response = stream.last()
    assert response is not None  # an exchange's stream is ended by its response only
    return response
