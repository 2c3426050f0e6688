"""JSON-RPC framing over HTTP: decoding bodies, telling messages apart, id-less error replies.

A transport never interprets MCP; it only needs to know whether a message is a request, a
response or a notification, and which request id a response answers.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from vmcp.protocol.errors import INVALID_REQUEST
from vmcp.protocol.jsonrpc import (
    INVALID,
    REQUEST,
    RESPONSE,
    DecodeError,
    classify,
    decode,
    encode_kept_line,
    encode_line,
)
from vmcp_transport_http.whole_reply import JSON_HEADERS, WholeReply

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"


class HttpProblem(Exception):
    """A request refused with an HTTP status and a JSON-RPC error body.

    Raised anywhere in a handler; the server's middleware turns it into the response.
    """

    def __init__(
        self,
        status: int,
        message: str,
        code: int = INVALID_REQUEST,
        *,
        request_id: Any = None,
        headers: dict[str, str] | None = None,
        data: Any = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.request_id = request_id
        self.headers = headers or {}
        self.data = data
        #: the connection ends after the refusal (what it carries next cannot be trusted)
        self.close = close

    def response(self) -> WholeReply:
        """The HTTP response this problem is answered with."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        body = {"jsonrpc": "2.0", "id": self.request_id, "error": error}
        response = WholeReply(encode_kept_line(body), status=self.status,
                              headers={**JSON_HEADERS, **self.headers})
        if self.close:
            response.force_close()
        return response


@functools.lru_cache(maxsize=64)
def _media_type(value: str) -> str:
    """The media type of a ``Content-Type`` value (or of one ``Accept`` entry), without its
    parameters."""
    return value.split(";", 1)[0].strip().lower()


@functools.lru_cache(maxsize=64)
def _accepted(accept: str) -> frozenset[str]:
    """The media types an ``Accept`` header value lists (clients send the same few values)."""
    return frozenset(_media_type(part) for part in accept.split(","))


def is_json_body(request: web.BaseRequest) -> bool:
    """Whether a request says its body is JSON (read from the header once per distinct
    value: aiohttp would parse it again for every request)."""
    return _media_type(request.headers.get("Content-Type", "")) == JSON_TYPE


def media_types(request: web.BaseRequest) -> frozenset[str]:
    """The media types the ``Accept`` header lists (``*/*`` when there is none)."""
    return _accepted(request.headers.get("Accept", "*/*"))


def wants_sse(request: web.BaseRequest) -> bool:
    """Whether to answer a request POST with SSE (when the client names it), else JSON.

    :raises HttpProblem: 406 when the client accepts neither.
    """
    sse = _answer_as_sse(request.headers.get("Accept", "*/*"))
    if sse is None:
        raise HttpProblem(406, f"Not Acceptable: accept {JSON_TYPE} or {SSE_TYPE}")
    return sse


@functools.lru_cache(maxsize=64)
def _answer_as_sse(accept: str) -> bool | None:
    """SSE or JSON for an ``Accept`` header value (None: neither is accepted)."""
    types = _accepted(accept)
    if types & {SSE_TYPE, "text/*"}:
        return True
    return False if types & {JSON_TYPE, "application/*", "*/*"} else None


def decode_body(body: bytes) -> list[dict[str, Any]] | dict[str, Any]:
    """Decode a POSTed body: one message (a dict) or a batch (a non-empty list of dicts).

    :raises HttpProblem: 400 with -32700 for bad JSON, -32600 for anything else malformed
        (such as a message that is neither a request, a notification nor a response), with
        the message's id when it is readable.
    """
    try:
        data = decode(body)
    except DecodeError as exc:
        raise HttpProblem(400, exc.message, exc.code, request_id=exc.request_id) from exc
    if type(data) is dict:  # one message: the common case, without a list made for it
        messages: tuple[dict[str, Any]] | list[Any] = (data,)
    elif isinstance(data, list) and data and all(isinstance(m, dict) for m in data):
        messages = data
    else:
        raise HttpProblem(400, "Invalid Request: expected a JSON-RPC message or a batch of them")
    for message in messages:
        if classify(message) is INVALID:
            raise HttpProblem(
                400, "Invalid Request: neither a request, a notification nor a response",
                request_id=request_key(message.get("id")))
    return data  # type: ignore[no-any-return]


def decode_message(data: str | bytes) -> dict[str, Any] | bytes:
    """Decode one received message; the raw bytes when it is not a JSON object."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        message = decode(raw)
    except DecodeError:
        return raw
    return message if isinstance(message, dict) else raw


def encode_message(message: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    """One message (or a batch) as compact UTF-8 JSON ending in its only newline."""
    return encode_line(message)


def is_request(message: dict[str, Any]) -> bool:
    """A request: has a method and an id (see :func:`vmcp.protocol.jsonrpc.classify`)."""
    return classify(message) is REQUEST


def is_response(message: dict[str, Any]) -> bool:
    """A response or error response (see :func:`vmcp.protocol.jsonrpc.classify`)."""
    return classify(message) is RESPONSE


def request_key(request_id: Any) -> str | int | None:
    """A request id usable as a dict key (JSON-RPC ids are strings or integers); else None."""
    if isinstance(request_id, bool):
        return None
    if isinstance(request_id, str | int):
        return request_id
    return None
