"""Running the gateway: mount, serve the chosen front transports, shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from vmcp.auth.base import Principal
from vmcp.config import VmcpConfig
from vmcp.gateway.gateway import Gateway

log = logging.getLogger("vmcp.gateway")


def _announce(name: str, where: str) -> None:
    # Tests and tools read this line from stderr to learn the real address (port 0).
    print(f"vmcp: serving {name} on {where}", file=sys.stderr, flush=True)


async def serve(
    config: VmcpConfig, fronts: Sequence[str], principal: Principal | None = None
) -> None:
    """Run the gateway until a stream front ends (its client left) or a signal arrives."""
    gateway = Gateway(config, principal)
    transports = {name: gateway.transport(name) for name in fronts}
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, main.cancel)
    servers: list[asyncio.Task[None]] = []
    try:
        await gateway.start()
        servers = [
            loop.create_task(
                transport.serve(gateway, config.transports.get(name, {}),
                                lambda where, name=name: _announce(name, where)),
                name=f"front:{name}",
            )
            for name, transport in transports.items()
        ]
        done, _ = await asyncio.wait(servers, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    except asyncio.CancelledError:
        log.info("stopping on signal")
    finally:
        for task in servers:
            task.cancel()
        await asyncio.gather(*servers, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(gateway.stop(), config.gateway.shutdown_grace + 10)
