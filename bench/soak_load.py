"""The soak's load: a steady population of MCP sessions over raw HTTP, renewed at a fixed rate.

``kept`` sessions are alive at any time: each lives ``kept / rate`` seconds, calling
``tools/call`` every ``call_interval`` seconds on its keep-alive connection, and a new one
arrives every ``1 / rate`` seconds (arrivals are scheduled on the clock, not after the previous
one, so the rate holds). The first ``kept`` start together with their lifetimes spread evenly,
so the population is steady from the first second. Sessions take turns: the even-numbered ones
end with DELETE, the odd-numbered ones are abandoned (their connections closed, nothing said:
the gateway reaps them once idle); in each pair, every other pair also holds its standalone
GET stream open on a second connection, as an SDK client does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from bench.http_client import HttpMcpClient
from bench.stats import BenchError


@dataclass
class SoakCounts:
    """What the load did so far, and what failed (by kind)."""

    opened: int = 0
    closed: int = 0
    abandoned: int = 0
    calls: int = 0
    #: sessions alive on the client side now
    alive: int = 0
    failures: dict[str, int] = field(default_factory=dict)

    def failed(self, exc: BaseException) -> None:
        """Count one failed session by the kind of its failure."""
        kind = str(exc) if isinstance(exc, BenchError) else type(exc).__name__
        self.failures[kind] = self.failures.get(kind, 0) + 1


@dataclass(frozen=True)
class SoakLoad:
    """The shape of the load."""

    url: str
    tool: str
    kept: int
    rate: float
    call_interval: float

    @property
    def lifetime(self) -> float:
        """Seconds each session lives."""
        return self.kept / self.rate


async def run_load(load: SoakLoad, seconds: float, counts: SoakCounts) -> None:
    """Keep the population for ``seconds``, then end every session still alive (abruptly:
    the gateway is stopped next)."""
    sessions: set[asyncio.Task[None]] = set()
    start = time.monotonic()
    deadline = start + seconds

    def launch(number: int, lifetime: float) -> None:
        task = asyncio.get_running_loop().create_task(_session(load, number, lifetime, counts))
        sessions.add(task)
        task.add_done_callback(sessions.discard)

    try:
        for number in range(load.kept):
            launch(number, load.lifetime * (number + 1) / load.kept)
        number = load.kept
        while (due := start + (number - load.kept + 1) / load.rate) < deadline:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            launch(number, load.lifetime)
            number += 1
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    finally:
        for task in list(sessions):
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)


async def _session(load: SoakLoad, number: int, lifetime: float, counts: SoakCounts) -> None:
    """One session's life: open, call until its time is up, then DELETE or abandon it."""
    abandon = number % 2 == 1
    streaming = (number // 2) % 2 == 0
    client, stream = HttpMcpClient(load.url), HttpMcpClient(load.url)
    end = time.monotonic() + lifetime
    counts.alive += 1
    try:
        await client.connect()
        await client.start_session()
        counts.opened += 1
        if streaming:
            await stream.connect()
            stream.session_id = client.session_id
            await stream.open_stream()
        calls = 0
        while time.monotonic() < end:
            calls += 1
            body = (b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"'
                    + load.tool.encode() + b'","arguments":{"text":"soak"}}}') % calls
            message = await client.request(body)
            if "result" not in message:
                raise BenchError(f"tools/call failed: {message}")
            counts.calls += 1
            await asyncio.sleep(min(load.call_interval, max(0.0, end - time.monotonic())))
        if abandon:
            counts.abandoned += 1
        else:
            if (status := await client.end_session()) != 200:
                raise BenchError(f"DELETE got HTTP {status}")
            counts.closed += 1
    except (OSError, BenchError, asyncio.IncompleteReadError, ValueError) as exc:
        counts.failed(exc)
    finally:
        counts.alive -= 1
        with contextlib.suppress(OSError):
            await asyncio.gather(client.close(), stream.close())
