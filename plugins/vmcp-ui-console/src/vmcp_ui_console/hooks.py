"""Start the console with the gateway when ``[console] enabled``; stop it with it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmcp.hookspecs import hookimpl

if TYPE_CHECKING:
    from aiohttp import web

    from vmcp.gateway.gateway import Gateway
    from vmcp_ui_console.app import Console

#: the running console of each gateway that has one, and its web server
_runners: dict[int, tuple[Console, web.AppRunner]] = {}


@hookimpl
async def vmcp_gateway_started(gateway: Gateway) -> None:
    """Serve the console; a non-loopback bind without an auth driver is refused."""
    # Imported here: every command loads the hook plugins, and `vmcp start` spawns its
    # backends before this hook runs.
    from vmcp_ui_console.settings import read_settings

    settings = read_settings(gateway.config.console)
    if not settings.enabled:
        return
    from vmcp.control.runtime import announce
    from vmcp.transports.netsec import refuse_insecure_bind
    from vmcp_ui_console.app import Console, serve

    refuse_insecure_bind("console", settings.host, gateway.auth_required)
    console = Console(gateway, settings)
    runner, url = await serve(console)
    _runners[id(gateway)] = console, runner
    announce(f"console on {url}")


@hookimpl
async def vmcp_gateway_stopping(gateway: Gateway) -> None:
    """Stop serving the console."""
    running = _runners.pop(id(gateway), None)
    if running is not None:
        console, runner = running
        await console.aclose()
        await runner.cleanup()
