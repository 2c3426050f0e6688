"""Supervision: restart replicas that exit (with backoff, refusing crash loops) and ping
live replicas to track their health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt

from vmcp.config import RestartSettings
from vmcp.protocol.errors import RpcError
from vmcp.registry.mount import Mount, Replica
from vmcp.routing.retry import backoff
from vmcp.upstream.session import UpstreamEvents

log = logging.getLogger("vmcp.registry")


class SupervisorOwner(UpstreamEvents, Protocol):
    """What the supervisor needs from the gateway."""

    def startup_timeout(self, mount: Mount) -> float:
        """How long a replica may take to start."""

    def prepare_hook(self) -> Any:
        """The ``vmcp_backend_prepare`` hook caller."""

    def replica_up(self, mount: Mount, replica: Replica) -> Awaitable[None]:
        """A replica came (back) up."""


def restart_delay(settings: RestartSettings, recent_restarts: int) -> float:
    """Exponential backoff with jitter, growing with the restarts seen recently."""
    state = RetryCallState(None, None, (), {})
    state.attempt_number = recent_restarts + 1
    wait = backoff(settings.initial_backoff, settings.max_backoff)
    return 0.0 if recent_restarts == 0 else float(wait(state))


class Supervisor:
    """Keeps replicas running and knows which are healthy."""

    def __init__(self, owner: SupervisorOwner) -> None:
        self.owner = owner
        self.stopping = False
        self._restarts: dict[Replica, asyncio.Task[None]] = {}
        self._health: dict[Replica, asyncio.Task[None]] = {}

    def watch(self, mount: Mount, replica: Replica) -> None:
        """Start health checks for a replica that just came up."""
        interval = mount.config.health.interval
        if interval > 0 and not self.stopping:
            self._cancel(self._health, replica)
            self._health[replica] = asyncio.get_running_loop().create_task(
                self._check_health(mount, replica))

    def replica_lost(self, mount: Mount, replica: Replica) -> None:
        """A replica's backend went away: restart it unless told not to."""
        self._cancel(self._health, replica)
        if replica.state in ("removed", "failed") or self.stopping:
            return
        replica.state = "down"
        if not mount.config.restart.enabled or replica in self._restarts:
            return
        self._restarts[replica] = asyncio.get_running_loop().create_task(
            self._restart(mount, replica))

    async def _restart(self, mount: Mount, replica: Replica) -> None:
        settings = mount.config.restart
        try:
            now = time.monotonic()
            while replica.restarts and replica.restarts[0] < now - settings.window_seconds:
                replica.restarts.popleft()
            if len(replica.restarts) >= settings.max_restarts:
                replica.state = "failed"
                log.error("replica %s is crash-looping (%d restarts in %gs); giving up",
                          replica.replica_id, len(replica.restarts), settings.window_seconds)
                return
            replica.state = "restarting"
            await asyncio.sleep(restart_delay(settings, len(replica.restarts)))
            retrying = AsyncRetrying(
                stop=stop_after_attempt(max(1, settings.max_restarts - len(replica.restarts))),
                wait=backoff(settings.initial_backoff, settings.max_backoff),
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    replica.restarts.append(time.monotonic())
                    await mount.start_replica(replica, self.owner,
                                              self.owner.startup_timeout(mount),
                                              self.owner.prepare_hook())
            log.info("replica %s restarted", replica.replica_id)
            await self.owner.replica_up(mount, replica)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            replica.state = "failed"
            log.error("replica %s could not be restarted: %s", replica.replica_id, exc)
        finally:
            self._restarts.pop(replica, None)

    async def _check_health(self, mount: Mount, replica: Replica) -> None:
        settings = mount.config.health
        failures = 0
        while replica.alive:
            await asyncio.sleep(settings.interval)
            upstream = replica.upstream
            if upstream is None or not upstream.alive:
                return
            try:
                await upstream.request("ping", None, settings.timeout)
            except RpcError as exc:
                failures += 1
                replica.breaker.record(False)
                if failures >= settings.unhealthy_after and replica.healthy:
                    replica.healthy = False
                    log.warning("replica %s is unhealthy: %s", replica.replica_id, exc.message)
                continue
            failures = 0
            if not replica.healthy:
                replica.healthy = True
                log.info("replica %s is healthy again", replica.replica_id)

    async def stop(self) -> None:
        """Stop restarting and checking anything."""
        self.stopping = True
        tasks = [*self._restarts.values(), *self._health.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._restarts.clear()
        self._health.clear()

    @staticmethod
    def _cancel(tasks: dict[Replica, asyncio.Task[None]], replica: Replica) -> None:
        task = tasks.pop(replica, None)
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(Exception):
                task.cancel()
