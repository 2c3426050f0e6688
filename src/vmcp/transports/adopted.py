"""A backend the stdio transport takes over from the head start instead of spawning it.

:mod:`vmcp.headstart` spawned the process before the event loop existed; here its pipes
are connected to the loop and its exit is watched through its pidfd, behind the same
interface as the loop's own subprocess transport, so the connection over it cannot tell
the two apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from typing import Any

from vmcp.headstart import HeadStart


class _PipeReader(asyncio.Protocol):
    """Hands what one of the backend's output pipes carries to the process protocol."""

    def __init__(self, protocol: asyncio.SubprocessProtocol, fd: int) -> None:
        self.protocol = protocol
        self.fd = fd

    def data_received(self, data: bytes) -> None:
        self.protocol.pipe_data_received(self.fd, data)

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.pipe_connection_lost(self.fd, exc)


class _PipeWriter(asyncio.Protocol):
    """The backend's stdin: flow control and its loss go to the process protocol."""

    def __init__(self, protocol: asyncio.SubprocessProtocol) -> None:
        self.protocol = protocol

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.pipe_connection_lost(0, exc)


class AdoptedProcess:
    """The subprocess transport of a head-started backend (the methods the stdio
    transport's connection uses: pid, return code, pipes, close)."""

    def __init__(self, head: HeadStart, protocol: asyncio.SubprocessProtocol) -> None:
        self._loop = asyncio.get_running_loop()
        self._head = head
        self._pid = head.pid
        self._pidfd = head.pidfd
        self._protocol = protocol
        self._returncode: int | None = None
        self._pipes: dict[int, Any] = {}
        self._closed = False

    async def connect(self) -> None:
        """Connect the pipes to the loop and start watching for the exit."""
        loop, protocol, head = self._loop, self._protocol, self._head
        self._pipes[0], _ = await loop.connect_write_pipe(
            lambda: _PipeWriter(protocol), os.fdopen(head.stdin, "wb", buffering=0))
        for fd, pipe in ((1, head.stdout), (2, head.stderr)):
            self._pipes[fd], _ = await loop.connect_read_pipe(
                lambda fd=fd: _PipeReader(protocol, fd), os.fdopen(pipe, "rb", buffering=0))
        loop.add_reader(self._pidfd, self._reap)

    def _reap(self) -> None:
        try:
            pid, status = os.waitpid(self._pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: its status is lost
            pid, status = self._pid, 255 << 8
        if pid == 0:
            return  # not exited after all
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._returncode = os.waitstatus_to_exitcode(status)
        self._protocol.process_exited()

    def get_pid(self) -> int:
        """The backend's process id."""
        return self._pid

    def get_returncode(self) -> int | None:
        """Its exit status (negative: the signal that ended it), None while it runs."""
        return self._returncode

    def get_pipe_transport(self, fd: int) -> Any:
        """The transport of its stdin (0), stdout (1) or stderr (2)."""
        return self._pipes.get(fd)

    def is_closing(self) -> bool:
        """True once closed."""
        return self._closed

    def close(self) -> None:
        """Close the pipes, and kill the backend if it still runs (as the loop's own
        subprocess transport does)."""
        if self._closed:
            return
        self._closed = True
        for pipe in self._pipes.values():
            pipe.close()
        if self._returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)


async def adopt(head: HeadStart, protocol_factory: Callable[[], asyncio.SubprocessProtocol]
                ) -> tuple[AdoptedProcess, asyncio.SubprocessProtocol]:
    """The transport and protocol of ``head``, as ``loop.subprocess_exec`` returns them."""
    protocol = protocol_factory()
    process = AdoptedProcess(head, protocol)
    try:
        await process.connect()
    except BaseException:
        process.close()
        raise
    protocol.connection_made(process)  # type: ignore[arg-type]
    return process, protocol
