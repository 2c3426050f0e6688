"""Helpers for the tests of vmcp and of its plugins: real local servers that a test starts
and ends (a registry, a package index, a folder of files, a ``redis-server``, a server script
that prints its port), on 127.0.0.1 and a free port."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.streams.text import TextReceiveStream


@contextlib.contextmanager
def local_http_server(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` in a thread; yield the base URL (``http://127.0.0.1:<port>``).

    The server is shut down, closed and its thread joined when the block ends.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class QuietFileHandler(SimpleHTTPRequestHandler):
    """Serves the files of a folder without logging every request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        """Say nothing (a test's output stays readable)."""


def serve_folder(root: Path) -> contextlib.AbstractContextManager[str]:
    """Serve the files under ``root`` (see :func:`local_http_server`); yields the base URL."""
    return local_http_server(partial(QuietFileHandler, directory=str(root)))


class ManualClock:
    """A clock (``time.monotonic``'s stand-in) that moves only when a test sets or advances
    :attr:`now`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process without persistence, stoppable and restartable on its
    port (``start`` again after ``stop``)."""

    READY = "Ready to accept connections"

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[str] | None = None

    @staticmethod
    def installed() -> bool:
        """Whether a ``redis-server`` can be started here."""
        return shutil.which("redis-server") is not None

    def start(self) -> None:
        """Start the server and return once it accepts connections."""
        process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.process = process
        assert process.stdout is not None
        seen = []
        for line in process.stdout:  # ends at EOF if the server fails to start
            seen.append(line)
            if self.READY in line:
                break
        else:
            raise RuntimeError("redis-server did not start:\n" + "".join(seen))
        # keep reading what it logs, so its pipe never fills
        threading.Thread(target=process.stdout.read, daemon=True).start()

    def stop(self) -> None:
        """Kill the server (as a crash would) and wait for it to be gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A started :class:`RedisServer` on a free port, stopped when the block ends."""
    server = RedisServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def printed_port(process: anyio.abc.Process, timeout: float) -> int:
    """The port in the first line ``process`` prints on its stdout (``PORT <n>``).

    :param timeout: seconds it may take to print it.
    """
    assert process.stdout is not None
    line = ""
    with anyio.fail_after(timeout):
        async for chunk in TextReceiveStream(process.stdout):
            line += chunk
            if "\n" in line:
                break
    return int(line.split()[1])


#: seconds a server script's process gets to end on SIGTERM before it is killed
STOP_GRACE = 10.0


@contextlib.asynccontextmanager
async def serving_script(argv: Sequence[str], timeout: float) -> AsyncIterator[str]:
    """Run ``argv``, a server that prints ``PORT <n>`` as its first line once it listens;
    yield ``http://127.0.0.1:<n>``; end it (SIGTERM, then SIGKILL after :data:`STOP_GRACE`).

    :param timeout: seconds it may take to print its port.
    """
    process = await anyio.open_process(list(argv), stdout=subprocess.PIPE, stderr=None)
    try:
        yield f"http://127.0.0.1:{await printed_port(process, timeout)}"
    finally:
        if process.returncode is None:
            process.terminate()
            with anyio.move_on_after(STOP_GRACE, shield=True):
                await process.wait()
            if process.returncode is None:
                process.kill()
                with anyio.CancelScope(shield=True):
                    await process.wait()
