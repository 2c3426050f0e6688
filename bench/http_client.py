"""The HTTP load generator: MCP over Streamable HTTP written as raw HTTP/1.1 on asyncio streams.

No HTTP library and no SDK: each client is one keep-alive TCP connection and one MCP session
(``initialize``, ``notifications/initialized``), then sequential ``tools/call`` POSTs; or, in
the 2026-07-28 era (``modern``), no session at all: every POST carries the ``_meta`` envelope
and the ``MCP-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name`` headers. Bodies are read by
``Content-Length`` or chunked encoding; a ``text/event-stream`` reply is scanned for its
``data:`` lines. Every answer is checked to carry a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.stats import BenchError

PROTOCOL_VERSION = "2025-06-18"
ACCEPT_BOTH = "application/json, text/event-stream"
ACCEPT_JSON = "application/json"
_INITIALIZE = json.dumps({
    "jsonrpc": "2.0", "id": 0, "method": "initialize",
    "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
               "clientInfo": {"name": "vmcp-bench", "version": "1"}},
}).encode()
_INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
MODERN_VERSION = "2026-07-28"
#: the ``_meta`` envelope of every modern request (no client capabilities)
_MODERN_META = (b'"_meta":{"io.modelcontextprotocol/protocolVersion":"' + MODERN_VERSION.encode()
                + b'","io.modelcontextprotocol/clientCapabilities":{}}')


class HttpMcpClient:
    """One MCP session over one keep-alive HTTP/1.1 connection."""

    def __init__(self, url: str, accept: str = ACCEPT_BOTH, modern: bool = False) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.accept = accept
        self.modern = modern
        self.session_id: str | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nAccept: {accept}\r\n"
        )

    async def connect(self) -> None:
        """Open the TCP connection."""
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, body: bytes, extra: str = "") -> tuple[int, dict[str, str], bytes]:
        """POST one message (``extra``: more header lines); returns (status, headers with
        lower-case names, body)."""
        assert self._reader is not None and self._writer is not None
        if self.session_id is not None:
            extra += (f"Mcp-Session-Id: {self.session_id}\r\n"
                      f"MCP-Protocol-Version: {PROTOCOL_VERSION}\r\n")
        head = f"{self._head}{extra}Content-Length: {len(body)}\r\n\r\n"
        self._writer.write(head.encode() + body)
        return await self._read_response()

    async def _read_head(self) -> tuple[int, dict[str, str]]:
        assert self._reader is not None
        reader = self._reader
        status_line = await reader.readline()
        if not status_line:
            raise BenchError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    async def _read_response(self) -> tuple[int, dict[str, str], bytes]:
        assert self._reader is not None
        reader = self._reader
        status, headers = await self._read_head()
        if status in (204, 304) or "content-length" in headers:
            payload = await reader.readexactly(int(headers.get("content-length", 0)))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            payload = await _read_chunked(reader)
        elif headers.get("connection", "").lower() == "close":
            payload = await reader.read()
        else:
            payload = b""
        return status, headers, payload

    async def request(self, body: bytes, extra: str = "") -> dict[str, Any]:
        """POST one request and return the JSON-RPC response (JSON or SSE reply)."""
        status, headers, payload = await self.post(body, extra)
        if status != 200:
            raise BenchError(f"HTTP {status}: {payload[:300]!r}")
        if headers.get("content-type", "").startswith("text/event-stream"):
            for line in payload.splitlines():
                if line.startswith(b"data:") and line[5:].strip():
                    message = json.loads(line[5:])
                    if "method" not in message:
                        return message  # type: ignore[no-any-return]
            raise BenchError(f"no response in the event stream: {payload[:300]!r}")
        return json.loads(payload)  # type: ignore[no-any-return]

    async def start_session(self) -> None:
        """Open a new MCP session on this connection (``initialize``, then ``initialized``)."""
        self.session_id = None
        status, headers, payload = await self.post(_INITIALIZE)
        session = headers.get("mcp-session-id")
        if status != 200 or not session:
            raise BenchError(f"initialize got HTTP {status} and no session: {payload[:300]!r}")
        self.session_id = session
        status, _, payload = await self.post(_INITIALIZED)
        if status != 202:
            raise BenchError(f"notifications/initialized got HTTP {status}: {payload[:200]!r}")

    async def open_stream(self) -> None:
        """GET the session's standalone SSE stream and return once its headers arrived: the
        connection then carries that stream until the session ends (nothing is read of it)."""
        assert self._writer is not None and self.session_id is not None
        self._writer.write((
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Accept: text/event-stream\r\nMcp-Session-Id: {self.session_id}\r\n"
            f"MCP-Protocol-Version: {PROTOCOL_VERSION}\r\n\r\n").encode())
        status, headers = await self._read_head()
        if status != 200 or not headers.get("content-type", "").startswith("text/event-stream"):
            raise BenchError(f"GET stream got HTTP {status} {headers.get('content-type')}")

    async def end_session(self) -> int | None:
        """DELETE the MCP session, so the server can forget it at once; the HTTP status (None:
        there was no session to end)."""
        if self.session_id is None or self._writer is None:
            return None
        self._writer.write((
            f"DELETE {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Mcp-Session-Id: {self.session_id}\r\nContent-Length: 0\r\n\r\n").encode())
        status, _, _ = await self._read_response()
        self.session_id = None
        return status

    async def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()


async def open_session(url: str, accept: str = ACCEPT_BOTH, modern: bool = False
                       ) -> HttpMcpClient:
    """A connected client with an initialized MCP session (modern: none is needed)."""
    client = HttpMcpClient(url, accept, modern)
    await client.connect()
    if not modern:
        await client.start_session()
    return client


async def _end(client: HttpMcpClient) -> None:
    try:
        await client.end_session()
    finally:
        await client.close()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readline()).split(b";", 1)[0], 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def _calls(client: HttpMcpClient, tool: str, count: int, latencies: list[int]) -> None:
    clock = time.perf_counter_ns
    meta, extra = b"", ""
    if client.modern:
        meta = b"," + _MODERN_META
        extra = (f"MCP-Protocol-Version: {MODERN_VERSION}\r\nMcp-Method: tools/call\r\n"
                 f"Mcp-Name: {tool}\r\n")
    for n in range(count):
        body = (b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"'
                + tool.encode() + b'","arguments":{"text":"hello"}' + meta + b'}}') % (n + 1)
        start = clock()
        message = await client.request(body, extra)
        latencies.append(clock() - start)
        if "result" not in message:
            raise BenchError(f"tools/call failed: {message}")


async def load(
    url: str, tool: str, clients: int, calls_per_client: int, accept: str = ACCEPT_BOTH,
    timeout: float = 300.0, modern: bool = False,
) -> tuple[float, list[int]]:
    """``clients`` sessions each making sequential calls; (seconds, per-call nanoseconds).

    Sessions are opened before the clock starts; the clock covers the calls only. With
    ``modern``, each client is a connection making stateless 2026-07-28 calls.
    """
    async with asyncio.timeout(timeout):
        sessions = await asyncio.gather(*(open_session(url, accept, modern)
                                          for _ in range(clients)))
        latencies: list[int] = []
        try:
            start = time.perf_counter()
            await asyncio.gather(*(_calls(s, tool, calls_per_client, latencies)
                                   for s in sessions))
            elapsed = time.perf_counter() - start
        finally:
            await asyncio.gather(*(_end(s) for s in sessions))
    return elapsed, latencies


async def idle_sessions(url: str, count: int, connections: int = 8,
                        timeout: float = 300.0) -> list[str]:
    """Open ``count`` MCP sessions over a few connections (closed afterwards) and leave them
    idle; returns their ids."""
    ids: list[str] = []
    async with asyncio.timeout(timeout):
        per_connection = [count // connections + (1 if i < count % connections else 0)
                          for i in range(connections)]

        async def opener(n: int) -> None:
            client = HttpMcpClient(url)
            await client.connect()
            try:
                for _ in range(n):
                    await client.start_session()
                    assert client.session_id is not None
                    ids.append(client.session_id)
            finally:
                await client.close()

        await asyncio.gather(*(opener(n) for n in per_connection if n))
    return ids


async def active_sessions(url: str, tool: str, count: int, calls: int = 2,
                          concurrency: int = 64, timeout: float = 600.0) -> list[HttpMcpClient]:
    """``count`` active sessions, ``concurrency`` opened at a time: each, on a connection of
    its own, makes ``calls`` sequential ``tools/call`` and then holds its standalone GET
    stream open. Returned connected (their connections carry the streams: end the sessions
    with :func:`end_sessions`, then close them)."""
    clients: list[HttpMcpClient] = []
    left = iter(range(count))

    async def opener() -> None:
        for _ in left:
            client = HttpMcpClient(url)
            clients.append(client)
            await client.connect()
            await client.start_session()
            await _calls(client, tool, calls, [])
            await client.open_stream()

    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(opener() for _ in range(min(concurrency, count))))
    except BaseException:
        await asyncio.gather(*(client.close() for client in clients))
        raise
    return clients


async def end_sessions(url: str, session_ids: list[str], connections: int = 8,
                       timeout: float = 300.0) -> None:
    """DELETE these sessions over a few connections of their own."""
    async def closer(share: list[str]) -> None:
        client = HttpMcpClient(url)
        await client.connect()
        try:
            for session_id in share:
                client.session_id = session_id
                if (status := await client.end_session()) != 200:
                    raise BenchError(f"DELETE of a session got HTTP {status}")
        finally:
            await client.close()

    count = max(1, min(connections, len(session_ids)))
    async with asyncio.timeout(timeout):
        await asyncio.gather(*(closer(session_ids[n::count]) for n in range(count)))


@dataclass
class LoopFigures:
    """What a closed-loop run saw: answers, refusals, failures and the slowest of them.

    ``answered`` and ``refused`` count what completed within the measured window only (after
    the ramp in which the crowd arrives); the latencies and failures cover every exchange.
    """

    answered: int = 0
    refused: int = 0
    failed: int = 0
    #: sessions opened (first exchanges answered), over the whole run
    opened: int = 0
    #: ``tools/call`` answers over the whole run, ramp included
    answered_all: int = 0
    #: requests whose answer or refusal took longer than ``slow_after`` seconds (a
    #: connection's first request includes its connect)
    slow: int = 0
    worst_ns: int = 0
    latencies: list[int] = field(default_factory=list)
    #: session openings (connect, ``initialize``, ``notifications/initialized``: two
    #: requests) that took longer than ``slow_after`` seconds in all, and the slowest
    slow_openings: int = 0
    worst_opening_ns: int = 0
    #: failures by kind (the exception's name, or the unexpected HTTP status)
    failures: dict[str, int] = field(default_factory=dict)


def _call_body(tool: str, n: int) -> bytes:
    return (b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"'
            + tool.encode() + b'","arguments":{"text":"hello"}}}') % n


async def _closed_loop_client(
    url: str, tool: str, window: tuple[float, float], figures: LoopFigures, slow_after: float,
    request_timeout: float,
) -> None:
    """One client: open a session, then call until the deadline (``window``: when counting
    starts, and the deadline); wait ``Retry-After`` when refused, open a new connection
    after a failure. Every request is timed, a new connection's connect with its first
    request, and so is every session opening as a whole."""
    counting, deadline = window
    clock = time.perf_counter_ns
    slow_ns = slow_after * 1e9
    client = HttpMcpClient(url)
    connected = False
    n = 0

    def timed(started: int) -> int:
        """Record one request that began at ``started``; the clock now."""
        now = clock()
        elapsed = now - started
        figures.latencies.append(elapsed)
        figures.worst_ns = max(figures.worst_ns, elapsed)
        figures.slow += elapsed > slow_ns
        return now

    try:
        while time.monotonic() < deadline:
            start = clock()
            request_start: int | None = start  # of the request under way, if one is
            wait = 0.0
            opening = client.session_id is None
            try:
                async with asyncio.timeout(request_timeout):
                    if not connected:
                        await client.connect()
                        connected = True
                    if opening:
                        status, headers, _ = await client.post(_INITIALIZE)
                        request_start = timed(start)
                        if status == 200 and headers.get("mcp-session-id"):
                            client.session_id = headers["mcp-session-id"]
                            status, headers, _ = await client.post(_INITIALIZED)
                            status = 200 if status == 202 else status
                            timed(request_start)
                        request_start = None
                        opened = clock() - start
                        figures.worst_opening_ns = max(figures.worst_opening_ns, opened)
                        figures.slow_openings += opened > slow_ns
                    else:
                        n += 1
                        status, headers, _ = await client.post(_call_body(tool, n))
                        timed(start)
                        request_start = None
                counted = counting <= time.monotonic() < deadline
                if status == 200 and opening:
                    figures.opened += 1
                elif status == 200:
                    figures.answered_all += 1
                    figures.answered += counted
                elif status in (429, 503):
                    figures.refused += counted
                    wait = float(headers.get("retry-after", "1"))
                else:
                    raise BenchError(f"HTTP {status}")
            except (OSError, TimeoutError, BenchError, asyncio.IncompleteReadError,
                    ValueError) as exc:
                figures.failed += 1
                kind = str(exc) if isinstance(exc, BenchError) else type(exc).__name__
                figures.failures[kind] = figures.failures.get(kind, 0) + 1
                if request_start is not None:
                    timed(request_start)  # the request that failed
                await client.close()
                client = HttpMcpClient(url)
                connected = False
            if wait:
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
    finally:
        if connected:
            with contextlib.suppress(OSError, BenchError, asyncio.IncompleteReadError):
                await client.end_session()
        await client.close()


async def closed_loop(
    url: str, tool: str, clients: int, seconds: float, slow_after: float = 1.0,
    request_timeout: float = 10.0, ramp: float = 0.0, start: float | None = None,
) -> tuple[float, LoopFigures]:
    """``clients`` closed-loop clients, all starting at once (connections and sessions
    included, as a crowd arriving would) at ``start`` (``time.monotonic``; None: now), for
    ``ramp`` and then ``seconds`` more: answers and refusals are counted in those last
    ``seconds`` (the sustained rate; the crowd's arrival is seen in the latencies); (the
    measured window's seconds, what they saw)."""
    figures = LoopFigures()
    now = time.monotonic()
    if start is not None and start > now:
        await asyncio.sleep(start - now)
        now = start
    window = (now + ramp, now + ramp + seconds)
    await asyncio.gather(*(_closed_loop_client(url, tool, window, figures, slow_after,
                                               request_timeout) for _ in range(clients)))
    return seconds, figures


def _closed_loop_part(url: str, tool: str, clients: int, seconds: float, slow_after: float,
                      ramp: float, start: float) -> LoopFigures:
    from vmcp.eventloop import run  # uvloop when installed, as the gateway runs

    return run(closed_loop(url, tool, clients, seconds, slow_after, ramp=ramp,
                           start=start))[1]


#: clients one load-generator process runs: a crowd arrives at once, and one process opening
#: thousands of connections would time its own queue of connects, not the server's answers
CLIENTS_PER_PROCESS = 256


def crowd(url: str, tool: str, clients: int, seconds: float, slow_after: float = 1.0,
          ramp: float = 0.0) -> tuple[float, LoopFigures, float]:
    """:func:`closed_loop` run by one process per :data:`CLIENTS_PER_PROCESS` clients, all
    starting together; (seconds measured, what they saw together, the CPU seconds those
    processes used)."""
    processes = max(1, math.ceil(clients / CLIENTS_PER_PROCESS))
    shares = [clients // processes + (i < clients % processes) for i in range(processes)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    context = multiprocessing.get_context("fork")  # the workers need nothing set up again
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        start = time.monotonic() + 0.5  # every worker is up by then
        parts = list(pool.map(_closed_loop_part, *zip(*[
            (url, tool, share, seconds, slow_after, ramp, start) for share in shares],
            strict=True)))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    figures = LoopFigures()
    for part in parts:
        figures.answered += part.answered
        figures.refused += part.refused
        figures.failed += part.failed
        figures.opened += part.opened
        figures.answered_all += part.answered_all
        figures.slow += part.slow
        figures.worst_ns = max(figures.worst_ns, part.worst_ns)
        figures.slow_openings += part.slow_openings
        figures.worst_opening_ns = max(figures.worst_opening_ns, part.worst_opening_ns)
        figures.latencies += part.latencies
        for kind, count in part.failures.items():
            figures.failures[kind] = figures.failures.get(kind, 0) + count
    return seconds, figures, cpu
