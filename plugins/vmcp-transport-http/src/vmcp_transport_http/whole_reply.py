"""A reply whose body is complete before it is sent, written with its head in one go.

aiohttp's ``Response`` prepares any response: cookies, compression, chunking, a body that
the method or status must leave empty, a default for every header it may need. The front's
complete replies (a JSON body, or a whole SSE stream sent at once) are none of those: a POST
answered with a known body and a handful of headers. Measured per reply, aiohttp's general
path costs about 7 µs, this one about 1 µs; on a routed ``tools/call`` over HTTP that is
most of a tenth of what the gateway spends on the call.

What leaves is what ``Response`` would send: the status line of the request's HTTP version,
the reply's headers, ``Content-Length``, ``Date``, ``Server`` and the ``Connection`` header
its keep-alive calls for, with the front's own headers (see
:meth:`~vmcp_transport_http.front_app.FrontApp.finish_headers`) added first.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion, HttpVersion10, HttpVersion11

#: the headers of a JSON reply (its body is always UTF-8)
JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json; charset=utf-8"}

_TAIL = f"\r\nServer: {SERVER_SOFTWARE}\r\nDate: "
_KEEP_ALIVE = "\r\nConnection: keep-alive"
_CLOSE = "\r\nConnection: close"
#: the status lines sent so far, by HTTP version and status (a few of each)
_STATUS_LINES: dict[tuple[HttpVersion, int], str] = {}


def _status_line(version: HttpVersion, status: int, reason: str) -> str:
    line = f"HTTP/{version.major}.{version.minor} {status} {reason}"
    if len(_STATUS_LINES) < 64:
        _STATUS_LINES[version, status] = line
    return line


class WholeReply(web.StreamResponse):
    """A response of ``body`` with ``headers`` (its ``Content-Type`` among them), of a
    ``status`` that has a body (not 1xx, 204 or 304). A HEAD request gets the head alone."""

    def __init__(self, body: bytes, *, status: int = 200,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status=status, headers=headers)
        self._whole = body

    @property
    def body(self) -> bytes:
        """The reply's body."""
        return self._whole

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        """Take the front's headers and settle keep-alive; the head leaves with the body."""
        if self._eof_sent or self._payload_writer is not None:
            return self._payload_writer
        self._req = request
        writer = self._payload_writer = request._payload_writer
        await request._prepare_hook(self)
        if self._keep_alive is None:
            self._keep_alive = request.keep_alive
        return writer

    async def write_eof(self, data: bytes = b"") -> None:
        """Send the head and the body in one write (``data``: nothing, the body is whole)."""
        if self._eof_sent:
            return
        assert not data, "a whole reply takes no more data"
        writer = self._payload_writer
        request = self._req
        assert writer is not None and request is not None, "prepare() comes first"
        body = self._whole
        version = request.version
        headers = self._headers
        fields = "".join([f"\r\n{name}: {value}" for name, value in headers.items()])
        if fields.count("\n") != len(headers) or fields.count("\r") != len(headers):
            raise ValueError(f"a header holds a line break: {fields!r}")
        status = self.status
        start = (_STATUS_LINES.get((version, status))
                 or _status_line(version, status, self.reason))
        if self._keep_alive:
            connection = _KEEP_ALIVE if version == HttpVersion10 else ""
        else:
            connection = _CLOSE if version == HttpVersion11 else ""
        if connection and "Connection" in headers:
            connection = ""
        # UTF-8, as aiohttp writes heads; a request's bytes that were not UTF-8 (aiohttp
        # decodes them with surrogateescape) go back as they came
        head = (f"{start}{fields}{connection}\r\nContent-Length: {len(body)}{_TAIL}"
                f"{rfc822_formatted_time()}\r\n\r\n").encode("utf-8", "surrogateescape")
        await writer.write_eof(head if request.method == "HEAD" else head + body)
        self._eof_sent = True
        self._req = None
        self._body_length = len(body)
        self._payload_writer = None
