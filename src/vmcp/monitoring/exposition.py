"""``GET /metrics`` over HTTP on ``[monitoring] metrics_host:metrics_port``, served on the
gateway's own event loop (no thread: the state it reads is never changed under it).

With an auth driver that checks credentials, a scraper authenticates like any client (e.g.
``Authorization: Bearer``); without one, the gateway serves metrics on loopback only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from vmcp.auth.base import AuthError
from vmcp.monitoring.metrics import GatewayMetrics

log = logging.getLogger("vmcp.monitoring")

#: a scraper gets this long to send its request
_READ_TIMEOUT = 10.0
_MAX_HEADER_LINES = 100


class MetricsServer:
    """A minimal HTTP/1.1 server answering ``GET /metrics`` (one request per connection)."""

    def __init__(
        self, metrics: GatewayMetrics, host: str, port: int,
        authenticate: Callable[[Mapping[str, str]], Awaitable[Any]] | None = None,
    ) -> None:
        """:param authenticate: checks each request's headers (raising :class:`AuthError`);
        None serves everyone."""
        self.metrics = metrics
        self.authenticate = authenticate
        self.host = host
        self.port = port
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> str:
        """Listen; return the URL of the metrics (with the real port when 0 was asked)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        port = self._server.sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}/metrics"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT):
                request_line = await reader.readline()
                headers: dict[str, str] = {}
                for _ in range(_MAX_HEADER_LINES):
                    line = (await reader.readline()).decode("latin-1").strip()
                    if not line:
                        break
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            parts = request_line.decode("latin-1").split()
            extra = ""
            refused = await self._refusal(headers)
            if refused is not None:
                reason = "Forbidden" if refused.status == 403 else "Unauthorized"
                status, body, kind = f"{refused.status} {reason}", f"{refused}\n".encode(), \
                    "text/plain"
                if refused.www_authenticate:
                    extra = f"WWW-Authenticate: {refused.www_authenticate}\r\n"
            elif len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
                status, body, kind = "405 Method Not Allowed", b"GET /metrics\n", "text/plain"
            elif parts[1].split("?", 1)[0] not in ("/metrics", "/"):
                status, body, kind = "404 Not Found", b"GET /metrics\n", "text/plain"
            else:
                status, body, kind = "200 OK", self.metrics.exposition(), CONTENT_TYPE_LATEST
            head = (f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n{extra}"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode("latin-1"))
            if parts[:1] != ["HEAD"]:
                writer.write(body)
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError):
            pass
        except Exception:
            log.exception("serving /metrics failed")
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _refusal(self, headers: Mapping[str, str]) -> AuthError | None:
        if self.authenticate is None:
            return None
        try:
            await self.authenticate(headers)
        except AuthError as exc:
            return exc
        return None

    async def aclose(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
