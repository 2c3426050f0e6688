"""The pieces of the front-side checks an HTTP front's path (:mod:`.front_app`) takes:
CORS (what a preflight is answered, what a script may read), the id a refused POST names,
and body size (413).

The rules themselves (what a ``Host`` or ``Origin`` may be, which binds need auth) are the
kernel's, in :mod:`vmcp.transports.netsec`, shared with the other network transports.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web
from aiohttp.http import HttpVersion11

from vmcp.protocol.jsonrpc import readable_id
from vmcp_transport_http.messages import HttpProblem
from vmcp_transport_http.modern_headers import is_token

#: what a browser client sends besides the CORS-safelisted headers (and the
#: ``Mcp-Param-*`` headers of 2026-07-28 tool calls, allowed as a preflight names them)
CORS_REQUEST_HEADERS = ("Authorization, Content-Type, Last-Event-ID, Mcp-Protocol-Version, "
                        "Mcp-Session-Id, Mcp-Method, Mcp-Name")
_PARAM_PREFIX = "mcp-param-"
#: response headers a browser client's script must be able to read
CORS_EXPOSED_HEADERS = "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate"
CORS_METHODS = "GET, POST, DELETE, OPTIONS"
#: seconds a browser may reuse a preflight answer
CORS_MAX_AGE = "600"
#: bytes of a refused POST's body read to find the id its refusal names (it comes first,
#: in practice), and the seconds that reading may wait for them
ID_PEEK_BYTES = 64 * 1024
ID_PEEK_WAIT = 0.5
#: the one expectation a front meets
CONTINUE = "100-continue"


def awaits_continue(request: web.BaseRequest) -> bool:
    """Whether the client holds its body back until told to send it (it sent an ``Expect``,
    in practice ``100-continue``) and it has not come: it comes only once :func:`read_body`
    asks for it."""
    return (not request.content.is_eof() and request.version == HttpVersion11
            and "Expect" in request.headers)


async def peek_id(request: web.BaseRequest) -> str | int | None:
    """The id near the start of a body not read yet (None once the handler has read it).
    Not for a body the client holds back (:func:`awaits_continue`): it would not come."""
    content = request.content
    if content.is_eof():  # all of it has arrived (or was read already: then nothing is left)
        start = content.read_nowait(ID_PEEK_BYTES)
        return readable_id(start) if start else None
    prefix = bytearray()
    with contextlib.suppress(TimeoutError, asyncio.TimeoutError, OSError):
        async with asyncio.timeout(ID_PEEK_WAIT):
            while len(prefix) < ID_PEEK_BYTES and not content.is_eof():
                prefix += await content.read(ID_PEEK_BYTES - len(prefix))
    return readable_id(bytes(prefix)) if prefix else None


def preflight(requested: str) -> web.Response:
    """The answer to a CORS preflight asking for the ``requested`` headers."""
    # only names a header could have are echoed: a preflight's value is the client's to choose
    params = [name for name in map(str.strip, requested.split(","))
              if name.lower().startswith(_PARAM_PREFIX) and is_token(name)]
    return web.Response(status=204, headers={
        "Access-Control-Allow-Methods": CORS_METHODS,
        "Access-Control-Allow-Headers": ", ".join([CORS_REQUEST_HEADERS, *params]),
        "Access-Control-Max-Age": CORS_MAX_AGE,
    })


async def read_body(request: web.BaseRequest, limit: int, timeout: float) -> bytes:
    """Read a request body of at most ``limit`` bytes, arriving within ``timeout`` seconds.

    :raises HttpProblem: 413 when the declared or the actual size is larger (with the id
        the start of the body shows); 408 when the body is late (the connection then ends:
        the rest of the body may still come).
    """
    declared = request.content_length  # parsed again on each read of the property
    if declared is not None and declared > limit:
        raise _too_large(limit)  # the body is not read: the middleware peeks at its start
    content = request.content
    if content.is_eof():  # all of it has arrived already (a small body usually has)
        body = content.read_nowait()
    else:
        await _expectation(request)
        chunks = bytearray()
        try:
            async with asyncio.timeout(timeout):
                async for chunk in content.iter_any():
                    chunks += chunk
                    if len(chunks) > limit:
                        raise _too_large(limit, bytes(chunks[:ID_PEEK_BYTES]))
        except TimeoutError:
            start = bytes(chunks[:ID_PEEK_BYTES])
            raise HttpProblem(408, f"Request Timeout: the body did not arrive within "
                              f"{timeout:g} s", request_id=readable_id(start) if start else None,
                              close=True) from None
        body = bytes(chunks)
    if len(body) > limit:
        raise _too_large(limit, body[:ID_PEEK_BYTES])
    return body


async def _expectation(request: web.BaseRequest) -> None:
    """Meet an HTTP/1.1 request's ``Expect``: ``100 Continue`` for one holding its body back
    (curl does for large bodies; unasked, it waits a second), 417 for any other.

    :raises HttpProblem: 417 for an expectation other than ``100-continue``.
    """
    expect = request.headers.get("Expect")
    if expect is None or request.version != HttpVersion11:
        return
    if expect.lower() != CONTINUE:
        raise HttpProblem(417, f"Expectation Failed: only {CONTINUE} is met")
    writer = request.writer
    await writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    writer.output_size = 0  # the response proper has not begun


def _too_large(limit: int, start: bytes = b"") -> HttpProblem:
    return HttpProblem(413, f"Request body too large (limit {limit} bytes)",
                       request_id=readable_id(start) if start else None)
