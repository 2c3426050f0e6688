"""The built-in ``stdio`` transport: newline-delimited JSON-RPC over pipes.

Front: serves one client on the gateway's own stdin/stdout (stdout carries nothing but
protocol lines), first replaying what the fast start read (:mod:`vmcp.transports.handover`).
Back: spawns a backend server as a child process, captures its stderr into
the gateway log, and shuts it down politely (close stdin, wait, SIGTERM, SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import stat
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from vmcp import headstart
from vmcp.config import LimitSettings, MountConfig, expand_vars
from vmcp.faststart import take_handover
from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import RpcError
from vmcp.transports.adopted import adopt
from vmcp.transports.base import (
    Connection,
    ConnectionClosed,
    FrontHost,
    JsonMessage,
    Transport,
)
from vmcp.transports.handover import ReplayPeer
from vmcp.transports.lines import NOTIFICATION_BUDGET, LineSplitter, LineWriter

log = logging.getLogger("vmcp.transports.stdio")

_STOP_WAIT = 2.0
#: the largest line a backend may send (its messages are relayed, so this is generous)
_BACKEND_LIMIT = 1 << 26


class _BackendProtocol(asyncio.SubprocessProtocol):
    """Receives a backend process's stdout (messages) and stderr (log lines)."""

    def __init__(self, mount_id: str) -> None:
        self.mount_id = mount_id
        self.backend_log = logging.getLogger(f"vmcp.backend.{mount_id}")
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.stdout_closed = False
        self.on_message: Callable[[JsonMessage | bytes], None] | None = None
        self.on_closed: Callable[[str], None] | None = None
        self.backlog: list[JsonMessage | bytes] = []
        self.stdout = LineSplitter(_BACKEND_LIMIT, self._line, self._oversize)
        self.stderr = LineSplitter(64 * 1024, self._log_line, lambda: None)

    def _line(self, line: bytes) -> None:
        try:
            message: JsonMessage | bytes = jsonrpc.decode(line)
        except RpcError:
            message = line
        if self.on_message is not None:
            self.on_message(message)
        else:
            self.backlog.append(message)

    def _oversize(self) -> None:
        log.error("backend %s sent a message over the size limit; dropped", self.mount_id)

    def _log_line(self, line: bytes) -> None:
        self.backend_log.info("%s", line.decode("utf-8", "replace").rstrip())

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        (self.stdout if fd == 1 else self.stderr).feed(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self.stdout_closed = True
            self._maybe_closed()

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(0)
        self._maybe_closed()

    def _maybe_closed(self) -> None:
        # Report once both happened: every line the backend wrote has been delivered.
        if self.stdout_closed and self.exited.done() and self.on_closed is not None:
            callback, self.on_closed = self.on_closed, None
            callback("")


class ProcessConnection(Connection):
    """A backend MCP server running as a child process.

    Messages are pushed to the upstream session as each line arrives (no reader task);
    :meth:`receive` serves callers that pull instead.
    """

    def __init__(
        self, mount_id: str, transport: asyncio.SubprocessTransport, protocol: _BackendProtocol
    ) -> None:
        self.mount_id = mount_id
        self.transport = transport
        self.protocol = protocol
        # uvloop's pipe transports are not asyncio.WriteTransport subclasses; duck-typed.
        self._out = LineWriter(cast(asyncio.WriteTransport, transport.get_pipe_transport(0)))
        self._closing = False
        self._inbox: asyncio.Queue[JsonMessage | bytes | None] | None = None

    @property
    def pid(self) -> int:
        """The backend process's id."""
        return self.transport.get_pid()

    def _exit_reason(self) -> str:
        code = self.transport.get_returncode()
        if code is None:
            return "connection closed"
        return f"process exited with status {code}"

    def send_nowait(self, message: JsonMessage) -> bool:
        if self._closing or self.transport.get_returncode() is not None:
            raise ConnectionClosed(self._exit_reason())
        self._out.write(message)
        return True

    async def send(self, message: JsonMessage) -> None:
        self.send_nowait(message)

    def start_push(
        self, on_message: Callable[[JsonMessage | bytes], None], on_closed: Callable[[str], None]
    ) -> bool:
        protocol = self.protocol
        protocol.on_message = on_message
        protocol.on_closed = lambda _: on_closed(self._exit_reason())
        backlog, protocol.backlog = protocol.backlog, []
        for message in backlog:
            on_message(message)
        protocol._maybe_closed()
        return True

    async def receive(self) -> JsonMessage | bytes:
        if self._inbox is None:
            inbox: asyncio.Queue[JsonMessage | bytes | None] = asyncio.Queue()
            self._inbox = inbox
            self.start_push(inbox.put_nowait, lambda _: inbox.put_nowait(None))
        message = await self._inbox.get()
        if message is None:
            self._inbox.put_nowait(None)
            raise ConnectionClosed(self._exit_reason())
        return message

    async def aclose(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._out.close()
        exited = self.protocol.exited
        pid = self.pid
        if not exited.done():
            try:
                await asyncio.wait_for(asyncio.shield(exited), _STOP_WAIT)
            except TimeoutError:
                _signal_group(pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(asyncio.shield(exited), _STOP_WAIT)
                except TimeoutError:
                    _signal_group(pid, signal.SIGKILL)
                    await exited
        # Children the backend left behind in its process group go with it.
        _signal_group(pid, signal.SIGKILL)
        self.transport.close()


class _StdoutProtocol(asyncio.Protocol):
    """The gateway's stdout: when the client stops reading, stdin stops being read too."""

    def __init__(self) -> None:
        self.paused = False
        self.stdin: asyncio.ReadTransport | None = None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.stdin is not None and not self.stdin.is_closing():
            self.stdin.resume_reading()


class _StdinProtocol(asyncio.Protocol):
    """Feeds the gateway's stdin to the front session, line by line."""

    def __init__(self, splitter: LineSplitter, stdout: _StdoutProtocol) -> None:
        self.splitter = splitter
        self.stdout = stdout
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.stdout.stdin = cast(asyncio.ReadTransport, transport)

    def data_received(self, data: bytes) -> None:
        self.splitter.feed(data)
        if self.stdout.paused and self.stdout.stdin is not None:
            # The client is not reading our answers: stop reading its requests until it does.
            self.stdout.stdin.pause_reading()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


class StdioTransport(Transport):
    """Newline-delimited JSON-RPC over standard streams (front) and child processes (back)."""

    name = "stdio"

    async def serve(
        self,
        host: FrontHost,
        settings: Mapping[str, Any],
        ready: Callable[[str], Awaitable[None] | None],
    ) -> None:
        loop = asyncio.get_running_loop()
        stdout = _StdoutProtocol()
        write_transport: Any
        if not _pollable(1):  # event loops watch pipes, sockets and terminals only
            write_transport = _FileWriter(1)
        else:
            write_transport, _ = await loop.connect_write_pipe(
                lambda: stdout, os.fdopen(os.dup(1), "wb", 0))
        out = LineWriter(write_transport, NOTIFICATION_BUDGET)
        handover = take_handover()
        # the writer is the client's peer (behind what drops the fast start's answers)
        session = host.open_session(out if handover is None else ReplayPeer(out, handover),
                                    front="stdio")
        splitter = LineSplitter(host.config.gateway.max_message_bytes, session.handle_bytes,
                                lambda: session.handle_bytes(b""))  # an over-long line: -32700
        if handover is not None:  # what the fast start read comes first, as it came
            splitter.feed(handover.consumed)
        protocol = _StdinProtocol(splitter, stdout)
        stop_reading: Callable[[], Any]
        if not _pollable(0):
            stop_reading = loop.create_task(_read_file(0, protocol)).cancel
        else:
            read_transport, _ = await loop.connect_read_pipe(
                lambda: protocol, os.fdopen(os.dup(0), "rb", 0))
            stop_reading = read_transport.close
        await _maybe_await(ready("stdin/stdout"))
        try:
            await protocol.done
        finally:
            stop_reading()
            await session.aclose()
            out.close()

    async def connect(
        self, mount: MountConfig, env: dict[str, str], headers: dict[str, str],
        scope: tuple[str, str] | None = None,
    ) -> Connection:
        assert mount.command is not None
        command = env_expand(mount.command, env)
        args = [env_expand(arg, env) for arg in mount.args]
        cwd = env_expand(mount.cwd, env) if mount.cwd else None
        limiter = _limiter(mount.limits)
        head = None if scope is not None or limiter is not None else \
            headstart.claim([command, *args], env, cwd or None)
        if head is not None:
            log.info("mount %s: took over backend %d, spawned by the head start",
                      mount.id, head.pid)
            adopted, backend = await adopt(head, lambda: _BackendProtocol(mount.id))
            return ProcessConnection(mount.id, cast(asyncio.SubprocessTransport, adopted),
                                     cast(_BackendProtocol, backend))
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _BackendProtocol(mount.id),
                command,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=cwd,
                # Its own session and process group: signals to vmcp's terminal don't reach
                # it, and stopping it reaches every process it started.
                start_new_session=True,
                preexec_fn=limiter,
            )
        except OSError as exc:
            raise ConnectionClosed(f"cannot start {command!r}: {exc.strerror or exc}") from exc
        return ProcessConnection(mount.id, transport, protocol)


def _pollable(fd: int) -> bool:
    """True for a pipe, socket or terminal; False for a regular file or a device such as
    /dev/null, which epoll refuses (uvloop aborts the process on it)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return True  # let the event loop report the bad descriptor
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)


class _FileWriter:
    """Stands in for a pipe transport when stdout is a file or device (writes do not block)."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(os.dup(fd), "wb", 0)

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def get_write_buffer_size(self) -> int:
        return 0  # written through

    def is_closing(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        self._file.close()


async def _read_file(fd: int, protocol: _StdinProtocol) -> None:
    """Feed stdin to the session when it is a file or device, then end as at EOF."""
    with os.fdopen(os.dup(fd), "rb", 0) as source:
        while chunk := await asyncio.to_thread(source.read, 1 << 16):
            protocol.data_received(chunk)
    protocol.connection_lost(None)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _limiter(limits: LimitSettings) -> Callable[[], None] | None:
    """A pre-exec function applying resource limits in the child, or None when unset."""
    wanted = [
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_AS, limits.address_space_mb and limits.address_space_mb * 1024 * 1024),
        (resource.RLIMIT_NOFILE, limits.open_files),
    ]
    chosen = [(kind, value) for kind, value in wanted if value]
    if not chosen:
        return None

    def apply() -> None:
        for kind, value in chosen:
            resource.setrlimit(kind, (value, value))

    return apply


def env_expand(value: str, env: Mapping[str, str]) -> str:
    """Expand ``${VAR}`` from the backend's environment."""
    return expand_vars(value, env)


async def _maybe_await(value: Awaitable[None] | None) -> None:
    if value is not None:
        await value

