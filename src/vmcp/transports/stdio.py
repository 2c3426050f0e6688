"""The built-in ``stdio`` transport: newline-delimited JSON-RPC over pipes.

Front: serves one client on the gateway's own stdin/stdout (stdout carries nothing but
protocol lines). Back: spawns a backend server as a child process, captures its stderr into
the gateway log, and shuts it down politely (close stdin, wait, SIGTERM, SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from vmcp.config import LimitSettings, MountConfig, expand_vars
from vmcp.protocol import jsonrpc
from vmcp.transports.base import (
    Connection,
    ConnectionClosed,
    FrontHost,
    JsonMessage,
    Transport,
)

log = logging.getLogger("vmcp.transports.stdio")

#: above this many buffered bytes a writer waits for the pipe to drain
_HIGH_WATER = 1 << 20
_STOP_WAIT = 2.0


class _LineWriter:
    """Writes encoded lines to an asyncio pipe without awaiting on the common path."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    def write(self, message: JsonMessage) -> None:
        self._writer.write(jsonrpc.encode_line(message))

    @property
    def congested(self) -> bool:
        transport = self._writer.transport
        return transport.get_write_buffer_size() > _HIGH_WATER

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()


class ProcessConnection(Connection):
    """A backend MCP server running as a child process."""

    def __init__(self, mount_id: str, process: asyncio.subprocess.Process) -> None:
        self.mount_id = mount_id
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        self._out = _LineWriter(process.stdin)
        self._stdout = process.stdout
        self._closing = False

    def send_nowait(self, message: JsonMessage) -> bool:
        if self._closing or self.process.returncode is not None:
            raise ConnectionClosed(self._exit_reason())
        self._out.write(message)
        return True

    async def send(self, message: JsonMessage) -> None:
        self.send_nowait(message)
        if self._out.congested:
            try:
                await self._out.drain()
            except (ConnectionError, RuntimeError) as exc:
                raise ConnectionClosed(self._exit_reason()) from exc

    async def receive(self) -> JsonMessage | bytes:
        while True:
            try:
                line = await self._stdout.readline()
            except ValueError:  # a line longer than the stream limit: skip it
                log.error("backend %s sent a message over the size limit; dropped", self.mount_id)
                continue
            if not line:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.process.wait(), _STOP_WAIT)
                raise ConnectionClosed(self._exit_reason())
            if line.strip():
                break
        try:
            return jsonrpc.decode(line)
        except Exception:
            return line

    def _exit_reason(self) -> str:
        code = self.process.returncode
        if code is None:
            return "connection closed"
        return f"process exited with status {code}"

    async def aclose(self) -> None:
        if self._closing:
            return
        self._closing = True
        proc = self.process
        self._out.close()
        if proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), _STOP_WAIT)
            except TimeoutError:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), _STOP_WAIT)
                except TimeoutError:
                    _signal_group(proc.pid, signal.SIGKILL)
                    await proc.wait()
        # Children the backend left behind in its process group go with it.
        _signal_group(proc.pid, signal.SIGKILL)


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


async def _pump_stderr(mount_id: str, stream: asyncio.StreamReader) -> None:
    """Copy a backend's stderr into the gateway log, one record per line."""
    backend_log = logging.getLogger(f"vmcp.backend.{mount_id}")
    while True:
        try:
            line = await stream.readline()
        except ValueError:
            continue
        if not line:
            return
        backend_log.info("%s", line.decode("utf-8", "replace").rstrip())


class _StdoutPeer:
    """The front client behind the gateway's stdout."""

    def __init__(self, out: _LineWriter) -> None:
        self._out = out

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        self._out.write(message)


class StdioTransport(Transport):
    """Newline-delimited JSON-RPC over standard streams (front) and child processes (back)."""

    name = "stdio"

    def __init__(self) -> None:
        self._stderr_tasks: set[asyncio.Task[None]] = set()

    async def serve(
        self,
        host: FrontHost,
        settings: Mapping[str, Any],
        ready: Callable[[str], Awaitable[None] | None],
    ) -> None:
        loop = asyncio.get_running_loop()
        limit = host.config.gateway.max_message_bytes
        reader = asyncio.StreamReader(limit=limit)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(0), "rb", 0)
        )
        w_transport, w_protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(os.dup(1), "wb", 0)
        )
        writer = asyncio.StreamWriter(w_transport, w_protocol, None, loop)
        out = _LineWriter(writer)
        session = host.open_session(_StdoutPeer(out))
        await _maybe_await(ready("stdin/stdout"))
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:
                    session.handle_bytes(b"")  # answered as a parse error; the session goes on
                    continue
                if not line:
                    break
                if line.strip():
                    session.handle_bytes(line)
                if out.congested:
                    await out.drain()
        finally:
            await session.aclose()
            with contextlib.suppress(Exception):
                await out.drain()
            out.close()

    async def connect(
        self, mount: MountConfig, env: dict[str, str], headers: dict[str, str]
    ) -> Connection:
        assert mount.command is not None
        command = env_expand(mount.command, env)
        args = [env_expand(arg, env) for arg in mount.args]
        try:
            process = await asyncio.create_subprocess_exec(
                command,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=env_expand(mount.cwd, env) if mount.cwd else None,
                limit=1 << 26,
                # Its own session and process group: signals to vmcp's terminal don't reach
                # it, and stopping it reaches every process it started.
                start_new_session=True,
                preexec_fn=_limiter(mount.limits),
            )
        except OSError as exc:
            raise ConnectionClosed(f"cannot start {command!r}: {exc.strerror or exc}") from exc
        assert process.stderr is not None
        task = asyncio.get_running_loop().create_task(_pump_stderr(mount.id, process.stderr))
        self._stderr_tasks.add(task)
        task.add_done_callback(self._stderr_tasks.discard)
        return ProcessConnection(mount.id, process)


def env_expand(value: str, env: Mapping[str, str]) -> str:
    """Expand ``${VAR}`` from the backend's environment."""
    return expand_vars(value, env)


async def _maybe_await(value: Awaitable[None] | None) -> None:
    if value is not None:
        await value

