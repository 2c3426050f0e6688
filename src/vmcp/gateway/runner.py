"""Running the gateway: mount, serve the chosen front transports, shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Sequence
from functools import partial

from vmcp.auth.base import Principal
from vmcp.config import VmcpConfig
from vmcp.control.runtime import GatewayRuntime, RunOptions, announce
from vmcp.eventloop import on_signals
from vmcp.gateway.gateway import Gateway
from vmcp.transports.netsec import refuse_public_bind

log = logging.getLogger("vmcp.gateway")

#: seconds the backends' start may wait for the fronts to listen (on a warm catalog)
FRONTS_FIRST_WAIT = 1.0
#: container allocations (net of frees) between two youngest-generation collections, for
#: the serving gateway (CPython's default is 700): a request allocates hundreds, so the
#: default collects every few requests and promotes each one's objects to older
#: generations, whose collections then walk every open connection and session. Measured
#: under the overload bench (2,048 clients): collections took 28% of the gateway's CPU at
#: 700, 5-8% at 10,000; the cyclic garbage it may hold longer is that many objects.
GC_YOUNG_THRESHOLD = 10_000


async def serve(
    config: VmcpConfig, fronts: Sequence[str], principal: Principal | None = None,
    options: RunOptions | None = None,
) -> None:
    """Run the gateway until a stream front ends (its client left), a signal arrives or
    ``vmcp stop`` asks; a stop asked for lets calls in flight finish (``shutdown_grace``)."""
    options = options or RunOptions()
    gateway = Gateway(config, principal)
    transports = {name: gateway.transport(name) for name in fronts}
    settings = {name: {**config.transports.get(name, {}), **options.front_overrides.get(name, {})}
                for name in transports}
    for name, transport in transports.items():  # refuse a bad front before any backend starts
        transport.check_front(settings[name], gateway)
    if config.monitoring.metrics_port is not None:
        refuse_public_bind("monitoring.metrics_host", "metrics", config.monitoring.metrics_host,
                           gateway.auth_required, "could read every mount's traffic figures")
    loop = asyncio.get_running_loop()
    runtime = GatewayRuntime(gateway, list(transports), options)
    announcer = _Announcer(runtime)
    on_signals((signal.SIGTERM, signal.SIGINT), runtime.stop.set)
    servers: list[asyncio.Task[None]] = []
    opened: set[str] = set()
    listening = asyncio.Event()

    def ready(name: str, where: str) -> None:
        announcer.ready(name, where)
        if None not in runtime.state.fronts.values():
            listening.set()

    def open_fronts(early_only: bool = False) -> None:
        for name, transport in transports.items():
            if name not in opened and (transport.serves_while_starting or not early_only):
                opened.add(name)
                servers.append(loop.create_task(
                    transport.serve(gateway, settings[name], partial(ready, name)),
                    name=f"front:{name}"))

    async def open_fronts_first() -> None:
        # On a warm catalog: every front serves before any backend is spawned, so the
        # first requests are not queued behind ten process start-ups.
        open_fronts()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listening.wait(), FRONTS_FIRST_WAIT)
        announcer.gateway_started()

    try:
        async with runtime:
            try:
                # Listening fronts answer health probes while the mounts start (and hold
                # client requests until they have); stdio is served once they have, or at
                # once on a warm catalog.
                open_fronts(early_only=True)
                gateway.warm.on_ready = open_fronts_first
                await gateway.start(alongside=runtime.start_metrics)
                runtime.gateway_started()
                announcer.gateway_started()
                # What start-up built (modules, schemas, mounts) lives as long as the process:
                # keep it out of later full collections, which would walk all of it each time
                # (one took 35 ms, stalling every call in flight, at 128 HTTP clients).
                gc.freeze()
                gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
                open_fronts()
                stopping = loop.create_task(runtime.stop.wait())
                try:
                    done, _ = await asyncio.wait([*servers, stopping],
                                                 return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stopping.cancel()
                for task in done:
                    if task is not stopping and not task.cancelled() and (
                            task.exception() is not None):
                        raise task.exception()  # type: ignore[misc]
                if runtime.stop.is_set():
                    log.info("stopping: calls in flight get %gs to finish",
                             gateway.config.gateway.shutdown_grace)
                    await runtime.drain(gateway.config.gateway.shutdown_grace)
            finally:
                for task in servers:
                    task.cancel()
                await asyncio.gather(*servers, return_exceptions=True)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(gateway.stop(),
                                           gateway.config.gateway.shutdown_grace + 10)
    except asyncio.CancelledError:
        log.info("stopping on signal")


class _Announcer:
    """Reports each front as it listens; says it serves once the gateway has started too."""

    def __init__(self, runtime: GatewayRuntime) -> None:
        self.runtime = runtime
        self.started = False
        self._serving: set[str] = set()

    def ready(self, name: str, where: str) -> None:
        """A front listens at ``where``."""
        self.runtime.front_ready(name, where)
        if self.started:
            self._announce(name, where)
        else:
            announce(f"listening {name} on {where} (starting up)")

    def gateway_started(self) -> None:
        """The mounts are up (or failed): every front listening so far serves now."""
        self.started = True
        for name, where in self.runtime.state.fronts.items():
            if where is not None:
                self._announce(name, where)

    def _announce(self, name: str, where: str) -> None:
        if name not in self._serving:
            self._serving.add(name)
            # tests and tools read this line to learn the real address (port 0)
            announce(f"serving {name} on {where}")
