"""Helpers for the HTTP transport tests: processes on free ports, an in-process front, a fake host.

Every port is chosen at run time (port 0, the real one read back), every process is ended by
the helper that started it, and waiting is done on events (a line printed, a callback called),
each guarded by ``anyio.fail_after``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream

from vmcp.auth.base import AuthError, Principal
from vmcp.config import VmcpConfig
from vmcp.protocol.versions import negotiate
from vmcp.testing import printed_port
from vmcp.transports.base import FrontPeer, Transport

FIXTURE = Path(__file__).resolve().parent / "http_fixture_server.py"
#: seconds a process gets to start and report where it listens
START_TIMEOUT = 30.0
#: seconds anything else a test waits for may take
EVENT_TIMEOUT = 10.0


async def stop_process(process: Process) -> None:
    """End a child process: SIGTERM, then SIGKILL if it does not exit in time."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with anyio.move_on_after(EVENT_TIMEOUT, shield=True):
            await process.wait()
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()


async def start_fixture_backend(mode: str, *flags: str) -> tuple[Process, str]:
    """Start ``http_fixture_server.py`` in ``http`` or ``sse`` mode; return it and its URL.

    The caller ends the process (:func:`stop_process`).
    """
    process = await anyio.open_process(
        [sys.executable, str(FIXTURE), mode, *flags], stdout=subprocess.PIPE, stderr=None
    )
    try:
        port = await printed_port(process, START_TIMEOUT)
    except BaseException:
        await stop_process(process)
        raise
    return process, f"http://127.0.0.1:{port}/{'mcp' if mode == 'http' else 'sse'}"


@asynccontextmanager
async def fixture_backend(mode: str, *flags: str) -> AsyncIterator[str]:
    """Run ``http_fixture_server.py`` in ``http`` or ``sse`` mode; yield its endpoint URL."""
    process, url = await start_fixture_backend(mode, *flags)
    try:
        yield url
    finally:
        await stop_process(process)


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def write_config(path: Path, tables: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write a ``vmcp.toml`` with one ``[name]`` table per entry (dotted names allowed)."""
    lines: list[str] = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml(value)}" for key, value in table.items()]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def stdio_fixture(**settings: Any) -> dict[str, Any]:
    """A mount running the fixture server over stdio."""
    return {"command": sys.executable, "args": [str(FIXTURE), "stdio"], **settings}


@dataclass
class RunningGateway:
    """A ``vmcp start`` process and what it printed."""

    process: Process
    urls: dict[str, str] = field(default_factory=dict)
    stderr: list[str] = field(default_factory=list)
    _new_line: anyio.Event = field(default_factory=anyio.Event)

    def add_line(self, line: str) -> None:
        """Record one line of stderr and wake whoever waits for one."""
        self.stderr.append(line)
        self._new_line.set()
        self._new_line = anyio.Event()

    async def wait_for_line(self, text: str, timeout: float = EVENT_TIMEOUT) -> str:
        """Wait until a line of stderr contains ``text``; return it."""
        with anyio.fail_after(timeout):
            while True:
                found = [line for line in self.stderr if text in line]
                if found:
                    return found[0]
                await self._new_line.wait()

    @property
    def url(self) -> str:
        """The URL of the only (or the ``http``) front."""
        return self.urls.get("http") or next(iter(self.urls.values()))


@asynccontextmanager
async def run_gateway(
    config: Path, *fronts: str, options: Sequence[str] = (), starting: bool = False
) -> AsyncIterator[RunningGateway]:
    """Start ``vmcp --config CONFIG start --transport F... OPTIONS``; yield once every front is
    ready (with ``starting``: once every front listens, while the mounts may still start).

    The URLs come from the ``vmcp: serving <name> on <url>`` lines on stderr (``vmcp:
    listening <name> on <url> (starting up)`` with ``starting``), which is drained for the
    whole run (and printed at the end, so a failing test shows it).
    """
    prefix = "vmcp: listening " if starting else "vmcp: serving "
    args = [sys.executable, "-m", "vmcp", "--config", str(config), "start", *options]
    for front in fronts:
        args += ["--transport", front]
    env = {**os.environ, "VMCP_HOME": str(config.parent / "home")}
    process = await anyio.open_process(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    gateway = RunningGateway(process)
    ready = anyio.Event()

    async def drain() -> None:
        assert process.stderr is not None
        buffer = ""
        async for chunk in TextReceiveStream(process.stderr):
            buffer += chunk
            *lines, buffer = buffer.split("\n")
            for line in lines:
                gateway.add_line(line)
                if line.startswith(prefix):
                    name, _, url = line.removeprefix(prefix).partition(" on ")
                    gateway.urls[name] = url.removesuffix(" (starting up)")
                    if len(gateway.urls) == len(fronts):
                        ready.set()
        ready.set()  # the process ended: let the waiter look at why

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            with anyio.fail_after(START_TIMEOUT):
                await ready.wait()
            if len(gateway.urls) != len(fronts):
                raise AssertionError("gateway did not start:\n" + "\n".join(gateway.stderr))
            try:
                yield gateway
            finally:
                await stop_process(process)
    finally:
        await stop_process(process)
        print("--- gateway stderr ---\n" + "\n".join(gateway.stderr))


async def run_to_exit(
    config: Path, *fronts: str, options: Sequence[str] = ()
) -> tuple[int, str]:
    """Run ``vmcp start`` expecting it to stop by itself; return its exit status and stderr."""
    args = [sys.executable, "-m", "vmcp", "--config", str(config), "start", *options]
    for front in fronts:
        args += ["--transport", front]
    env = {**os.environ, "VMCP_HOME": str(config.parent / "home")}
    with anyio.fail_after(START_TIMEOUT):
        result = await anyio.run_process(args, env=env, check=False, stdin=subprocess.DEVNULL)
    return result.returncode, result.stderr.decode("utf-8", errors="replace")


# -- an in-process front with a fake gateway ---------------------------------------------


class FakeSession:
    """A scripted stand-in for the gateway's session of one client.

    Requests: ``initialize``; ``echo`` and ``tools/call`` (result: its params); ``tools/list``
    (the host's ``tools``); ``fail`` (the error ``params.code`` with ``params.data``);
    ``chatty`` (``params.count`` notifications related to it, then the result);
    ``unsolicited`` (a notification not related to any request, then the result); ``hold``
    (answered by a later ``release``, its params echoed); ``subscriptions/listen``
    (acknowledged, never answered); ``ask`` (a server→client request
    related to it, answered once the client's response arrives). Anything else gets -32601.
    """

    def __init__(self, host: FakeHost, peer: FrontPeer, principal: Principal | None) -> None:
        self.host = host
        self.peer = peer
        self.principal = principal
        self.received: list[dict[str, Any]] = []
        self.held: list[tuple[Any, dict[str, Any]]] = []
        self.asking: dict[Any, Any] = {}
        self.closed = anyio.Event()

    def _result(self, request_id: Any, result: Any) -> None:
        self.peer.send({"jsonrpc": "2.0", "id": request_id, "result": result}, request_id)

    def handle(self, message: dict[str, Any]) -> None:
        """Take one message from the client."""
        self.received.append(message)
        method, request_id = message.get("method"), message.get("id")
        params = message.get("params") or {}
        if method is None:
            if request_id in self.asking:
                self._result(self.asking.pop(request_id), {"answer": message.get("result")})
        elif request_id is None:
            return
        elif method == "initialize":
            self._result(
                request_id,
                {
                    "protocolVersion": negotiate(params.get("protocolVersion")),
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "fake", "version": "0"},
                },
            )
        elif method in ("echo", "tools/call"):
            self._result(request_id, params)
        elif method == "tools/list":
            self._result(request_id, {"tools": self.host.tools, **self.host.list_lifetime})
        elif method == "fail":
            error = {"code": params["code"], "message": "failed", "data": params.get("data")}
            self.peer.send({"jsonrpc": "2.0", "id": request_id, "error": error}, request_id)
        elif method == "chatty":
            for n in range(params.get("count", 1)):
                note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"n": n}}
                self.peer.send(note, request_id)
            self._result(request_id, {"sent": params.get("count", 1)})
        elif method == "unsolicited":
            self.peer.send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
            self._result(request_id, {})
        elif method == "hold":
            self.held.append((request_id, params))
        elif method == "subscriptions/listen":  # acknowledged, then open until closed
            ack = {"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged"}
            self.peer.send(ack, request_id)
        elif method == "release":
            for held, held_params in self.held:
                self._result(held, {"released": True, **held_params})
            self.held.clear()
            self._result(request_id, {})
        elif method == "ask":
            ask_id = f"ask-{request_id}"
            self.asking[ask_id] = request_id
            request = {"jsonrpc": "2.0", "id": ask_id, "method": "sampling/createMessage"}
            self.peer.send(request, request_id)
        else:
            error = {"code": -32601, "message": f"Method not found: {method}"}
            self.peer.send({"jsonrpc": "2.0", "id": request_id, "error": error}, request_id)

    def handle_bytes(self, data: bytes) -> None:
        """Take one raw message."""
        self.handle(json.loads(data))

    async def aclose(self) -> None:
        """The client went away."""
        self.closed.set()
        self.host.closed.append(self)


class FakeHost:
    """A :class:`~vmcp.transports.base.FrontHost` that hands out :class:`FakeSession` objects.

    With ``tokens`` set, requests must carry ``Authorization: Bearer <token>`` with one of
    them; the token is the caller's name.
    """

    def __init__(self, *tokens: str) -> None:
        self.config = VmcpConfig()
        self.tokens = set(tokens)
        self.sessions: list[FakeSession] = []
        self.closed: list[FakeSession] = []
        #: what ``tools/list`` answers, and with what ``ttlMs``/``cacheScope``
        self.tools: list[dict[str, Any]] = []
        self.list_lifetime: dict[str, Any] = {}
        #: what :attr:`FrontHost.draining` answers
        self.draining = False

    @property
    def auth_required(self) -> bool:
        """Whether tokens are checked."""
        return bool(self.tokens)

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Check the bearer token when tokens are configured."""
        if not self.tokens:
            return Principal("anonymous")
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            raise AuthError("missing or wrong bearer token", 401)
        return Principal(token)

    async def started(self) -> None:
        """Started from the first: nothing to wait for."""

    def open_session(self, peer: FrontPeer, principal: Principal | None = None) -> FakeSession:
        """A new scripted session."""
        session = FakeSession(self, peer, principal)
        self.sessions.append(session)
        return session

    def open_stateless(self, peer: FrontPeer, principal: Principal | None = None
                       ) -> FakeSession:
        """A stateless request's entry: the same script."""
        return self.open_session(peer, principal)


@asynccontextmanager
async def serve_front(transport: Transport, fake: FakeHost, **settings: Any) -> AsyncIterator[str]:
    """Serve ``transport``'s front in this process on a free port; yield its URL."""
    url: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(transport.serve(fake, {"port": 0, **settings}, url.set_result))
    try:
        with anyio.fail_after(START_TIMEOUT):
            done, _ = await asyncio.wait({task, url}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # serve() failed: raise its error
        yield url.result()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
