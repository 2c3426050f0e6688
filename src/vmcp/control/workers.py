"""``vmcp start --workers N``: a supervisor running N gateway processes on one machine.

The supervisor serves nothing itself. It holds the instance lock and the control socket,
reserves each network front's port (a socket bound with ``SO_REUSEPORT`` but not listening,
so ``port = 0`` becomes one real port for all and nobody else takes it between restarts),
and runs N ``vmcp start`` workers that each listen on that port with ``SO_REUSEPORT``: the
kernel spreads new connections over the workers that listen. A worker that dies is
restarted with backoff while the others keep serving. SIGTERM or SIGINT (or ``vmcp stop``)
is passed to every worker, which drains as a single gateway does; the supervisor exits once
all have, with status 0 when every one stopped cleanly. SIGHUP (reload) is passed on too.

Each worker gets a lifeline, the read end of a pipe whose write end only the supervisor
holds: when the supervisor is gone (even by kill -9) the pipe reads end-of-file and the
worker stops, so no worker outlives it. Each worker's own control socket is
``run/worker-<i>.sock``; :mod:`vmcp.control.workerctl` answers the supervisor's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vmcp.config import ConfigError, VmcpConfig
from vmcp.control.instance import InstanceLock
from vmcp.control.paths import RunPaths
from vmcp.control.runtime import announce
from vmcp.control.server import ControlServer
from vmcp.control.workerctl import SupervisorOperations
from vmcp.eventloop import off_signals, on_signals
from vmcp.plugins import load_driver
from vmcp.transports.netsec import NetworkTransport

log = logging.getLogger("vmcp.workers")

#: seconds before the first restart of a worker that died; doubled per quick death
FIRST_BACKOFF = 0.5
#: the longest wait before a restart
MAX_BACKOFF = 30.0
#: a worker that served this long before it died is restarted after FIRST_BACKOFF again
STABLE_AFTER = 30.0
#: seconds beyond ``shutdown_grace`` the workers get to exit before they are killed
STOP_MARGIN = 30.0


@dataclass(frozen=True)
class WorkerRole:
    """What makes one ``vmcp start`` process a supervisor's worker (``--worker``)."""

    #: 0 .. N-1; worker i serves metrics on ``metrics_port + i`` when that port is set
    index: int
    #: its own control socket (the supervisor's forwards to it)
    control: str
    #: the read end of the supervisor's lifeline pipe: end-of-file when it is gone
    lifeline: int | None = None
    #: front settings over ``[transports.<name>]``: the reserved port, ``reuse_port``
    fronts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: the log file the supervisor logs to (a detached one's ``logs/vmcp.log``), if any
    log_file: str | None = None

    def to_arg(self) -> str:
        """The ``--worker`` value that gives a process this role."""
        return json.dumps(asdict(self))

    @classmethod
    def from_arg(cls, text: str) -> WorkerRole:
        """The role a ``--worker`` value describes.

        :raises ValueError: it is not one :meth:`to_arg` wrote.
        """
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("--worker takes a JSON object")
        return cls(**data)


def refuse_stdio(fronts: Sequence[str], workers: int) -> None:
    """Workers share network fronts only: the stdio front belongs to the one client that
    started the gateway.

    :raises ConfigError: ``stdio`` is among ``fronts`` with more than one worker.
    """
    if workers > 1 and "stdio" in fronts:
        raise ConfigError("[gateway]", [
            f"gateway.workers: {workers} workers share network fronts, but the stdio front "
            "serves the one client that started the gateway: serve a network front "
            "(-t http, -t ws) or run one worker (--workers 1)"])


def shares_sessions(config: VmcpConfig) -> bool:
    """Whether handshake-era HTTP sessions are shared between processes (``[cluster]
    redis_url`` configured): then any worker serves any session."""
    return config.cluster.url() is not None


def session_warning(config: VmcpConfig, fronts: Sequence[str]) -> str | None:
    """What an operator must know about handshake-era sessions with several workers, or
    None when there is nothing to say."""
    if shares_sessions(config) or not {"http", "sse"} & set(fronts):
        return None
    return ("several workers without [cluster] redis_url: a handshake-era HTTP session "
            "(initialize, then Mcp-Session-Id) is known only to the worker that opened it, "
            "and a request of it that reaches another worker over a new connection gets 404; "
            "set [cluster] redis_url to share sessions. 2026-07-28 requests and WebSocket "
            "connections are served by any worker as they are")


def worker_env(config: VmcpConfig) -> dict[str, str]:
    """The environment of the workers: this one, with a sealing key they share when none is
    configured (a key per process would make a worker refuse the ``requestState`` another
    minted, and a client's next round may reach any worker)."""
    env = dict(os.environ)
    if config.gateway.state_key is None:
        env["VMCP_STATE_KEY"] = secrets.token_urlsafe(32)
    return env


@dataclass
class Reservation:
    """One network front's port, held by the supervisor for its workers."""

    name: str
    host: str
    port: int
    sock: socket.socket


def reserve_ports(config: VmcpConfig, fronts: Sequence[str],
                  overrides: Mapping[str, Mapping[str, Any]]) -> list[Reservation]:
    """Bind each network front's address with ``SO_REUSEPORT`` (without listening).

    :raises ConfigError: a front that is not a network front, or invalid settings.
    :raises OSError: the address cannot be bound (e.g. another process listens there).
    """
    reserved: list[Reservation] = []
    try:
        for name in fronts:
            transport = load_driver("transports", name)()
            if not isinstance(transport, NetworkTransport):
                raise ConfigError("[gateway]", [f"gateway.workers: front {name!r} does not "
                                                "listen on a network port"])
            settings = transport.front_settings(
                {**config.transports.get(name, {}), **overrides.get(name, {})})
            family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((settings.host.strip("[]"), settings.port))
            except OSError as exc:
                sock.close()
                where = f"{settings.host}:{settings.port}"
                raise OSError(exc.errno, f"cannot listen on {where}: {exc.strerror}") from exc
            reserved.append(Reservation(name, settings.host, sock.getsockname()[1], sock))
    except BaseException:
        for reservation in reserved:
            reservation.sock.close()
        raise
    return reserved


@dataclass
class WorkerSlot:
    """One worker position: the process filling it now and what happened to it."""

    index: int
    process: asyncio.subprocess.Process | None = None
    #: starting, up, restarting, stopping, exited
    state: str = "starting"
    restarts: int = 0
    started: float = 0.0
    last_exit: int | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def describe(self) -> dict[str, Any]:
        """What ``vmcp status`` shows of this worker."""
        return {"index": self.index, "pid": self.process.pid if self.process else None,
                "state": self.state, "restarts": self.restarts,
                "uptime": round(time.time() - self.started, 3) if self.started else None,
                "last_exit": self.last_exit}


@dataclass(frozen=True)
class SupervisorOptions:
    """How ``vmcp start --workers N`` was asked to run."""

    workers: int
    fronts: Sequence[str]
    config_path: Path | None = None
    log_level: str | None = None
    #: where a detached supervisor reports it is ready (a pipe from ``vmcp start -d``)
    ready_fd: int | None = None
    log_file: str | None = None
    front_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class Supervisor:
    """Runs and restarts the workers; see the module docstring."""

    def __init__(self, config: VmcpConfig, options: SupervisorOptions) -> None:
        self.config = config
        self.options = options
        self.paths = RunPaths.current()
        self.slots = [WorkerSlot(i) for i in range(options.workers)]
        self.stopping = asyncio.Event()
        self.started = time.time()
        #: front name -> URL, as the first worker ready reported it
        self.fronts: dict[str, str] = {}
        self._reserved: list[Reservation] = []
        self._lifeline: tuple[int, int] | None = None
        self._env = worker_env(config)

    def worker_socket(self, index: int) -> Path:
        """Worker ``index``'s control socket."""
        return self.paths.run_dir / f"worker-{index}.sock"

    async def run(self) -> int:
        """Run until stopped; the exit status: 0 when every worker stopped cleanly.

        :raises AlreadyRunning: a gateway already runs with this home.
        :raises ConfigError: a front that workers cannot share, or invalid front settings.
        :raises OSError: a front's address cannot be bound.
        """
        refuse_stdio(self.options.fronts, self.options.workers)
        lock = InstanceLock(self.paths)
        lock.acquire()
        control: ControlServer | None = None
        try:
            self._reserved = reserve_ports(self.config, self.options.fronts,
                                           self.options.front_overrides)
            warning = session_warning(self.config, self.options.fronts)
            if warning:
                log.warning("%s", warning)
            self._lifeline = os.pipe()
            control = ControlServer(self.paths.socket, SupervisorOperations(self))
            await control.start()
            on_signals((signal.SIGTERM, signal.SIGINT), self.stop)
            on_signals((signal.SIGHUP,), lambda: self._signal_all(signal.SIGHUP))
            return await self._supervise()
        finally:
            off_signals((signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
            if control is not None:
                await control.aclose()
            for reservation in self._reserved:
                reservation.sock.close()
            if self._lifeline is not None:
                for fd in self._lifeline:
                    os.close(fd)
            lock.release()

    def stop(self) -> None:
        """Stop every worker (they drain), then exit."""
        if not self.stopping.is_set():
            log.info("stopping %d workers: calls in flight get %gs to finish",
                     len(self.slots), self.config.gateway.shutdown_grace)
            self.stopping.set()
            # A worker that has not exited by then is killed (with it, its drain).
            asyncio.get_running_loop().call_later(
                self.config.gateway.shutdown_grace + STOP_MARGIN, self._signal_all,
                signal.SIGKILL)
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum: int) -> None:
        for slot in self.slots:
            if slot.process is not None and slot.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    slot.process.send_signal(signum)

    async def _supervise(self) -> int:
        runs = [asyncio.create_task(self._keep(slot), name=f"worker:{slot.index}")
                for slot in self.slots]
        try:
            first = asyncio.create_task(self._all_ready())
            done, _ = await asyncio.wait([first, *runs], return_when=asyncio.FIRST_COMPLETED)
            if first in done and first.result():
                self._report_ready()
            else:  # a worker could not start at all: the others go too
                first.cancel()
                self.stop()
            statuses = await asyncio.gather(*runs)
        finally:
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
        failed = next((code for code in statuses if code != 0), 0)
        return 1 if failed < 0 else failed  # -N: a worker ended by signal N

    async def _all_ready(self) -> bool:
        await asyncio.gather(*(slot.ready.wait() for slot in self.slots))
        return True

    def _report_ready(self) -> None:
        for name, url in self.fronts.items():
            # Each worker has said "vmcp: serving <name> on <url>" itself.
            announce(f"{len(self.slots)} workers serving {name} on {url}")
        fd = self.options.ready_fd
        if fd is None:
            return
        report = {"pid": os.getpid(), "fronts": self.fronts, "metrics": None,
                  "control": str(self.paths.socket), "log": self.options.log_file,
                  "workers": [slot.describe() for slot in self.slots]}
        with contextlib.suppress(OSError):
            os.write(fd, json.dumps(report).encode() + b"\n")
        with contextlib.suppress(OSError):
            os.close(fd)

    async def _keep(self, slot: WorkerSlot) -> int:
        """Keep one worker running until the supervisor stops; its last exit status.

        A worker that exits before it was ever ready ends the supervisor (a start-up
        failure would only repeat); one that dies later is restarted with backoff.
        """
        backoff = FIRST_BACKOFF
        while True:
            code = await self._run_once(slot)
            slot.last_exit = code
            if self.stopping.is_set():
                slot.state = "exited"
                return code
            if not slot.ready.is_set():
                slot.state = "exited"
                log.error("worker %d exited with status %s before it was ready",
                          slot.index, code)
                return code or 1
            lived = time.time() - slot.started
            backoff = FIRST_BACKOFF if lived >= STABLE_AFTER else backoff
            slot.state = "restarting"
            slot.restarts += 1
            log.warning("worker %d (pid %s) exited with status %s after %.1fs; restarting "
                        "in %gs (restart %d)", slot.index, slot.process and slot.process.pid,
                        code, lived, backoff, slot.restarts)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), backoff)
            if self.stopping.is_set():
                slot.state = "exited"
                return 0
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _run_once(self, slot: WorkerSlot) -> int:
        """Start worker ``slot`` and wait for it to exit; its exit status (-N: signal N)."""
        read_end, write_end = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command(slot, write_end), stdin=asyncio.subprocess.DEVNULL, env=self._env,
                pass_fds=(write_end, self._lifeline[0]) if self._lifeline else (write_end,))
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        slot.process, slot.started = process, time.time()
        slot.state = "starting"
        waiting = asyncio.create_task(self._await_ready(slot, read_end))
        try:
            code = await process.wait()
        except asyncio.CancelledError:
            await self._end(process)
            raise
        finally:
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
        return code

    async def _await_ready(self, slot: WorkerSlot, fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        pipe = os.fdopen(fd, "rb", 0)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe)
        try:
            line = await reader.readline()
        finally:
            transport.close()
        if line.endswith(b"\n"):
            if not self.fronts:
                self.fronts.update(json.loads(line).get("fronts", {}))
            slot.state = "stopping" if self.stopping.is_set() else "up"
            if slot.restarts:
                log.info("worker %d serves again (pid %s)", slot.index, slot.process and
                         slot.process.pid)
            slot.ready.set()

    async def _end(self, process: asyncio.subprocess.Process) -> None:
        """End a worker the supervisor gives up on: SIGTERM, then SIGKILL past the grace."""
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(),
                                   self.config.gateway.shutdown_grace + STOP_MARGIN)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    def _command(self, slot: WorkerSlot, ready_fd: int) -> list[str]:
        overrides = {r.name: {**self.options.front_overrides.get(r.name, {}),
                              "host": r.host, "port": r.port, "reuse_port": True}
                     for r in self._reserved}
        role = WorkerRole(slot.index, str(self.worker_socket(slot.index)),
                          self._lifeline[0] if self._lifeline else None, overrides,
                          self.options.log_file)
        command = [sys.executable, "-m", "vmcp"]
        if self.options.config_path is not None:
            command += ["--config", str(self.options.config_path)]
        command += ["start", "--ready-fd", str(ready_fd), "--worker", role.to_arg()]
        for name in self.options.fronts:
            command += ["-t", name]
        if self.options.log_level:
            command += ["--log-level", self.options.log_level]
        return command
