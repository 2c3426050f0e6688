"""``vmcp connect``: a stdio front that relays every message to a gateway already running.

A client that starts its servers over stdio (Claude Desktop, most IDEs) would otherwise get
a gateway of its own, with its own backends. Through this bridge every such client shares
one long-running gateway (``vmcp start -d -t http``): each message read on stdin is posted
to the gateway's Streamable HTTP endpoint, and everything the gateway sends (responses,
notifications, its own requests such as sampling or elicitation) is written to stdout.
The bridge relays JSON-RPC messages as they are and holds no protocol state of its own.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
import httpx2
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from mcp.client.streamable_http import streamable_http_client
from mcp.server.stdio import stdio_server

from vmcp.control.client import ControlClient, NotRunning
from vmcp.control.paths import RunPaths
from vmcp.control.protocol import ControlError

#: the fronts ``vmcp connect`` can relay to, in the order it prefers them
RELAY_FRONTS = ("http",)


class BridgeError(Exception):
    """There is no gateway to relay to, or it cannot be reached."""


def running_gateway_url(paths: RunPaths | None = None) -> str:
    """The Streamable HTTP endpoint of the gateway running with this home.

    :raises BridgeError: no gateway runs, or it serves no HTTP front.
    """
    paths = paths or RunPaths.current()
    if not paths.socket.exists():
        raise BridgeError("no gateway is running with this home: start one with "
                          "`vmcp start -d -t http`, or give its URL")
    try:
        status = ControlClient(paths, timeout=5.0).call("status")
    except (NotRunning, ControlError, OSError) as exc:
        raise BridgeError(f"the gateway of this home does not answer ({exc})") from exc
    fronts = {front["name"]: front["where"] for front in status.get("fronts", [])}
    for name in RELAY_FRONTS:
        if fronts.get(name):
            return str(fronts[name])
    raise BridgeError("the running gateway serves no HTTP front (it serves "
                      f"{', '.join(fronts) or 'none'}): start it with `vmcp start -d -t http`")


async def _pump(source: ObjectReceiveStream[Any], sink: ObjectSendStream[Any],
                side: str) -> None:
    async for item in source:
        if isinstance(item, Exception):
            # A line that is not JSON-RPC, or a failed HTTP exchange: say so, keep relaying.
            print(f"vmcp connect: {side}: {item}", file=sys.stderr, flush=True)
            continue
        await sink.send(item)


async def relay(url: str, headers: dict[str, str] | None = None) -> None:
    """Relay stdin/stdout to the gateway at ``url`` until stdin ends (or the gateway's
    stream does); the gateway's session is closed on the way out."""
    async with (
        # The SDK's own timeouts: a response stream may stay open for minutes.
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0)) as http,
        streamable_http_client(url, http_client=http) as (remote_read, remote_write),
        stdio_server() as (local_read, local_write),
        anyio.create_task_group() as tg,
    ):
        async def client_to_gateway() -> None:
            await _pump(local_read, remote_write, "from the client")
            tg.cancel_scope.cancel()

        async def gateway_to_client() -> None:
            await _pump(remote_read, local_write, "from the gateway")
            tg.cancel_scope.cancel()

        tg.start_soon(client_to_gateway)
        tg.start_soon(gateway_to_client)
