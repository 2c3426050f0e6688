"""Everything a running gateway serves besides its fronts.

The instance lock and pid file, the control endpoint, the metrics endpoint, reload on
SIGHUP, the drain of in-flight calls before stopping, and the readiness report a detached
start waits for. :func:`vmcp.gateway.runner.serve` runs the gateway inside one
:class:`GatewayRuntime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmcp.config import VmcpConfig
from vmcp.control.instance import AlreadyRunning, InstanceLock
from vmcp.control.ops import Operations, RuntimeState
from vmcp.control.paths import RunPaths
from vmcp.control.protocol import ControlError
from vmcp.control.server import ControlServer
from vmcp.eventloop import off_signals, on_signals
from vmcp.logs import config_secrets, configure_logging

if TYPE_CHECKING:
    from vmcp.control.workers import WorkerRole
    from vmcp.gateway.gateway import Gateway
    from vmcp.monitoring.exposition import MetricsServer

log = logging.getLogger("vmcp.control")

#: how often the drain before stopping looks whether calls are still in flight
_DRAIN_POLL = 0.05


@dataclass(frozen=True)
class RunOptions:
    """How ``vmcp start`` runs the gateway."""

    #: the configuration file (reloads read it again); None: the default of ``$VMCP_HOME``
    config_path: Path | None = None
    #: started by ``vmcp start -d``: the control endpoint is required, a second one refused
    detached: bool = False
    #: where a detached gateway reports it is ready (a pipe from ``vmcp start -d``)
    ready_fd: int | None = None
    #: ``--log-level``, kept over reloads
    log_level: str | None = None
    #: the log file used instead of ``[logging] file`` (a detached gateway's ``logs/vmcp.log``)
    log_file: str | None = None
    #: front settings over ``[transports.<name>]`` (``--host``/``--port``), kept over reloads
    front_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: this process is a worker of ``vmcp start --workers N`` (the supervisor holds the
    #: instance lock; the worker's control socket is its own)
    worker: WorkerRole | None = None


def effective_logging(config: VmcpConfig, options: RunOptions) -> Any:
    """The logging settings in force: the configuration's, with the run's log file."""
    if options.log_file is None:
        return config.logging
    return config.logging.model_copy(update={"file": options.log_file})


#: the operations of each gateway running inside a :class:`GatewayRuntime`
_operations: weakref.WeakKeyDictionary[Gateway, Operations] = weakref.WeakKeyDictionary()


def operations_of(gateway: Gateway) -> Operations | None:
    """The control operations of a running gateway (what ``vmcp status``, ``mount``,
    ``reload`` ... run), for plugins that offer the same actions; None outside ``vmcp start``."""
    return _operations.get(gateway)


def announce(what: str) -> None:
    """One ``vmcp: ...`` line on stderr, the form tools read addresses from.

    Written in one call (stderr writes through): a supervisor and its workers share stderr,
    and a line written in two parts could have another process's line land inside it.
    """
    sys.stderr.write(f"vmcp: {what}\n")
    sys.stderr.flush()


class GatewayRuntime:
    """Entered around a running gateway (before it starts, left after it stopped)."""

    def __init__(self, gateway: Gateway, fronts: list[str], options: RunOptions) -> None:
        self.gateway = gateway
        self.options = options
        self.paths = RunPaths.current()
        self.stop = asyncio.Event()
        health = gateway.health
        health.fronts, health.stop = dict.fromkeys(fronts), self.stop
        self.state = RuntimeState(
            gateway, options.config_path, health.fronts, self.stop,
            log_file=effective_logging(gateway.config, options).file,
            on_reload=self._reloaded)
        self.operations = Operations(self.state)
        _operations[gateway] = self.operations
        worker = options.worker
        self._lock: InstanceLock | None = InstanceLock(self.paths) if worker is None else None
        self._control_path = self.paths.socket if worker is None else Path(worker.control)
        self._control: ControlServer | None = None
        self._metrics_server: MetricsServer | None = None
        self._gateway_started = False
        self._background: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> GatewayRuntime:
        self._take_lock()
        try:
            await self._start_control()
        except BaseException:
            await self._close()
            raise
        on_signals((signal.SIGHUP,), self._reload_on_signal)
        self._watch_lifeline()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        off_signals((signal.SIGHUP,))
        worker = self.options.worker
        if worker is not None and worker.lifeline is not None:
            asyncio.get_running_loop().remove_reader(worker.lifeline)
        await self._close()

    def _watch_lifeline(self) -> None:
        """A worker stops (draining) once its supervisor is gone: the lifeline pipe, whose
        write end only the supervisor holds, then reads end-of-file."""
        worker = self.options.worker
        if worker is None or worker.lifeline is None:
            return
        loop, fd = asyncio.get_running_loop(), worker.lifeline

        def gone() -> None:
            loop.remove_reader(fd)
            log.warning("the supervisor is gone: stopping")
            self.stop.set()

        loop.add_reader(fd, gone)

    def _take_lock(self) -> None:
        if self._lock is None:  # a worker: its supervisor holds the lock
            return
        try:
            self._lock.acquire()
        except AlreadyRunning as exc:
            if self.options.detached or "stdio" not in self.state.fronts:
                raise
            # A stdio gateway belongs to the client that spawned it: several may run at once.
            log.warning("%s; this one serves only the client that started it, with backends "
                        "of its own and no control endpoint (vmcp status, mount and reload "
                        "reach the other one). To share one gateway between clients, run it "
                        "as a service (vmcp start -d -t http) and let them use vmcp connect "
                        "(vmcp client add writes that entry)", exc)
            self._lock = None
            return
        if self._lock.stale_pid is not None:
            log.info("removed the stale pid file of a gateway that is gone (pid %s)",
                     self._lock.stale_pid)

    async def start_metrics(self) -> None:
        """Serve ``/metrics`` when ``[monitoring] metrics_port`` is set (and count calls).

        ``serve`` runs it while the backends start: importing the Prometheus client takes
        a while, and nothing is counted before a front serves.
        """
        settings = self.gateway.config.monitoring
        if settings.metrics_port is None:
            return
        port = settings.metrics_port
        if port and self.options.worker is not None:  # one port per worker
            port += self.options.worker.index
        from vmcp.monitoring.exposition import MetricsServer
        from vmcp.monitoring.metrics import GatewayMetrics

        metrics = GatewayMetrics(self.gateway)
        self.gateway.metrics = metrics
        self.state.metrics = metrics
        self._metrics_server = MetricsServer(
            metrics, settings.metrics_host, port,
            self.gateway.authenticate if self.gateway.auth_required else None)
        self.state.metrics_url = await self._metrics_server.start()
        announce(f"metrics on {self.state.metrics_url}")

    async def _start_control(self) -> None:
        if self._lock is None and self.options.worker is None:
            return
        control = ControlServer(self._control_path, self.operations)
        try:
            await control.start()
        except OSError as exc:
            if self.options.detached:
                raise
            log.warning("no control endpoint at %s: %s", self.paths.socket, exc)
            return
        self._control = control

    async def _close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._control is not None:
            await self._control.aclose()
            self._control = None
        if self._metrics_server is not None:
            await self._metrics_server.aclose()
            self._metrics_server = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- readiness ------------------------------------------------------------------------

    def gateway_started(self) -> None:
        """The mounts are up (or failed): ready once every front listens too."""
        self._gateway_started = True
        self._report_if_ready()

    def front_ready(self, name: str, where: str) -> None:
        """A front transport listens at ``where``."""
        self.state.fronts[name] = where
        self._report_if_ready()

    def _report_if_ready(self) -> None:
        fd = self.options.ready_fd
        if fd is None or not self._gateway_started or None in self.state.fronts.values():
            return
        report = {"pid": os.getpid(), "fronts": self.state.fronts,
                  "metrics": self.state.metrics_url, "control": str(self._control_path),
                  "log": self.state.log_file}
        with contextlib.suppress(OSError):
            os.write(fd, json.dumps(report).encode() + b"\n")
        with contextlib.suppress(OSError):
            os.close(fd)
        self.options = replace(self.options, ready_fd=None)

    # -- reload and stop ------------------------------------------------------------------

    def _reload_on_signal(self) -> None:
        task = asyncio.get_running_loop().create_task(self._reload())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reload(self) -> None:
        try:
            changes = await self.operations.reload({})
        except ControlError as exc:
            log.error("reload rejected, the running configuration stays: %s", exc.message)
            for problem in exc.problems:
                log.error("  %s", problem)
            return
        if changes["restart_needed"]:
            log.warning("restart to apply: %s", ", ".join(changes["restart_needed"]))

    def _reloaded(self, config: VmcpConfig) -> None:
        configure_logging(effective_logging(config, self.options), self.options.log_level,
                          config_secrets(config))
        log.info("configuration reloaded")

    async def drain(self, grace: float) -> None:
        """Give calls in flight up to ``grace`` seconds to finish, and stay at least
        ``drain_linger`` seconds (within the grace) for load balancers to notice."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        linger = loop.time() + min(grace, self.gateway.config.gateway.drain_linger)
        sessions, stateless = self.gateway.sessions, self.gateway.stateless
        # A poll, at shutdown only: an event for "nothing in flight" would cost every call.
        # A 2026-07-28 request is an exchange of its connection's session, or of its own
        # stateless entry (an HTTP POST).
        while loop.time() < deadline and (any(  # noqa: ASYNC110
                s.inflight or s.tasks or s.exchanges for s in list(sessions.values()))
                or any(entry.exchanges for entry in list(stateless))):
            await asyncio.sleep(_DRAIN_POLL)
        if (left := linger - loop.time()) > 0:
            await asyncio.sleep(left)  # a deadline, not an event: the balancer's checks
