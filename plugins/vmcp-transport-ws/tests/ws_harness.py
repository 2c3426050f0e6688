"""Helpers for the WebSocket transport tests (imported by ``conftest.py`` and the tests).

- :func:`ws_streams` adapts one WebSocket (client or server side) to the pair of memory
  streams the SDK's ``ClientSession`` and servers run over (SDK 2.3.0 has no WebSocket module);
  :func:`ws_session` is an initialized ``ClientSession`` over a new connection.
- :func:`run_gateway` runs ``python -m vmcp --config <file> start -t ws ...`` as a child
  process and learns each front's address from the ``vmcp: serving <name> on <where>`` lines
  on its stderr (so port 0 works); the process is stopped with SIGTERM when the block ends.
- :class:`WebSocketBackend` is a WebSocket MCP server on a free port for the gateway to mount:
  every connection runs its own in-process copy of ``ws_fixture_server``.

Waits are on events, each guarded by ``anyio.fail_after``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import ClientSession
from mcp.shared.message import SessionMessage
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Origin, Subprotocol
from ws_fixture_server import build_server

FIXTURE_SERVER = Path(__file__).resolve().with_name("ws_fixture_server.py")
#: seconds for the gateway (and its backends) to start, or a session to initialize
CONNECT_TIMEOUT = 30.0
#: seconds for anything else a test waits for
EVENT_TIMEOUT = 10.0
MCP = Subprotocol("mcp")
#: the largest message the shared test gateway's WebSocket front accepts
MAX_MESSAGE_BYTES = 4096
#: an origin the shared test gateway accepts besides loopback ones
ALLOWED_ORIGIN = "https://app.example"


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        pairs = ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)  # strings, numbers and booleans are written the same in TOML


def write_config(path: Path, tables: dict[str, dict[str, Any]]) -> Path:
    """Write a ``vmcp.toml`` with one ``[name]`` table per entry (``{}`` for an empty one)."""
    lines: list[str] = []
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def fixture_mount() -> dict[str, Any]:
    """A stdio mount running ``ws_fixture_server.py`` with this interpreter."""
    return {"command": sys.executable, "args": [str(FIXTURE_SERVER)]}


@asynccontextmanager
async def ws_streams(
    websocket: Connection,
) -> AsyncIterator[tuple[Any, Any]]:
    """``(read_stream, write_stream)`` of ``SessionMessage`` over one WebSocket.

    Each text frame is one JSON-RPC message. The read stream ends when the socket closes.
    """
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)

    async def pump_in() -> None:
        async with read_writer:
            try:
                async for frame in websocket:
                    try:
                        message = mcp_types.jsonrpc_message_adapter.validate_json(
                            frame, by_name=False)
                    except ValueError as exc:
                        await read_writer.send(exc)
                        continue
                    await read_writer.send(SessionMessage(message))
            except (ConnectionClosed, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return

    async def pump_out() -> None:
        async with write_reader:
            try:
                async for item in write_reader:
                    await websocket.send(
                        item.message.model_dump_json(by_alias=True, exclude_unset=True))
            except ConnectionClosed:
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(pump_in)
        tg.start_soon(pump_out)
        try:
            yield read_stream, write_stream
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def ws_session(
    url: str,
    *,
    origin: Origin | None = None,
    headers: dict[str, str] | None = None,
    **session_args: Any,
) -> AsyncIterator[tuple[ClientSession, ClientConnection]]:
    """An initialized SDK ``ClientSession`` over a new WebSocket (offering ``mcp``)."""
    async with (
        connect(url, subprotocols=[MCP], origin=origin, additional_headers=headers) as websocket,
        ws_streams(websocket) as (read, write),
        ClientSession(read, write, **session_args) as session,
    ):
        with anyio.fail_after(CONNECT_TIMEOUT):
            await session.initialize()
        yield session, websocket


@dataclass
class GatewayProcess:
    """A running ``vmcp start``: the child process and what it printed on stderr."""

    process: Process
    log: Path
    lines: list[str] = field(default_factory=list)
    _changed: anyio.Event = field(default_factory=anyio.Event)

    async def wait_line(self, prefix: str, timeout: float = CONNECT_TIMEOUT) -> str:
        """The first stderr line starting with ``prefix``, waiting for it if need be."""
        with anyio.fail_after(timeout):
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                if self.process.returncode is not None and self._changed.is_set():
                    raise AssertionError(f"gateway exited:\n{''.join(self.lines)}")
                await self._changed.wait()

    async def url(self, front: str = "ws") -> str:
        """Where front ``front`` is serving, as the gateway announced it."""
        return (await self.wait_line(f"vmcp: serving {front} on ")).split(" on ", 1)[1].strip()

    async def pump_stderr(self) -> None:
        """Record stderr lines (and copy them to the log file) until the process ends."""
        assert self.process.stderr is not None
        stream = BufferedByteReceiveStream(self.process.stderr)
        with self.log.open("a", encoding="utf-8") as log:
            while True:
                try:
                    raw = await stream.receive_until(b"\n", 1 << 20)
                except (anyio.IncompleteRead, anyio.EndOfStream, anyio.ClosedResourceError):
                    await self.process.wait()
                    self._notify()
                    return
                line = raw.decode("utf-8", "replace") + "\n"
                log.write(line)
                log.flush()
                self.lines.append(line)
                self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()


@asynccontextmanager
async def run_gateway(
    config: Path, *fronts: str, log: Path, env: dict[str, str] | None = None
) -> AsyncIterator[GatewayProcess]:
    """Run ``vmcp --config <config> start -t <front>...``; stop it with SIGTERM at the end."""
    args = [sys.executable, "-m", "vmcp", "--config", str(config), "start"]
    for front in fronts:
        args += ["--transport", front]
    environment = {**os.environ, "VMCP_HOME": str(config.parent / "home"), **(env or {})}
    process = await anyio.open_process(args, env=environment)
    gateway = GatewayProcess(process, log)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(gateway.pump_stderr)
            try:
                yield gateway
            finally:
                await _stop(process)
    finally:
        await process.aclose()


async def _stop(process: Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    with anyio.move_on_after(EVENT_TIMEOUT, shield=True) as waited:
        await process.wait()
    if waited.cancelled_caught:
        process.kill()
        with anyio.CancelScope(shield=True):
            await process.wait()


class WebSocketBackend:
    """A WebSocket MCP server on a free loopback port, for the gateway to mount.

    ``handshakes`` holds the request headers and the negotiated subprotocol of every
    connection; :meth:`drop` cuts every open connection without a closing handshake. A
    subclass may answer a request itself instead of upgrading it (:meth:`process_request`).
    """

    def __init__(self) -> None:
        self.url = ""
        self.handshakes: list[tuple[Headers, str | None]] = []
        self.open: set[ServerConnection] = set()
        self._changed = anyio.Event()

    async def _serve_one(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        self.handshakes.append((websocket.request.headers, websocket.subprotocol))
        self.open.add(websocket)
        self._changed.set()
        self._changed = anyio.Event()
        server = build_server()._lowlevel_server
        try:
            async with ws_streams(websocket) as (read, write):
                await server.run(read, write, server.create_initialization_options())
        finally:
            self.open.discard(websocket)

    async def wait_connections(self, count: int) -> None:
        """Wait until ``count`` connections were opened in all."""
        with anyio.fail_after(CONNECT_TIMEOUT):
            while len(self.handshakes) < count:
                await self._changed.wait()

    def drop(self) -> None:
        """Cut every open connection at the TCP level (no close frame)."""
        for websocket in self.open:
            websocket.transport.abort()

    async def process_request(self, connection: ServerConnection,
                              request: Request) -> Response | None:
        """The answer to ``request`` instead of the upgrade (None: upgrade it)."""
        return None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[WebSocketBackend]:
        """Serve on ``ws://127.0.0.1:<free port>/mcp`` for the duration of the block."""
        async with serve(self._serve_one, "127.0.0.1", 0, subprotocols=[MCP],
                         process_request=self.process_request) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}/mcp"
            yield self
