"""``vmcp connect``: serve stdio by relaying to the gateway already running."""

from __future__ import annotations

import contextlib

import click

from vmcp import eventloop
from vmcp.bridge import BridgeError, relay, running_gateway_url
from vmcp.cli.output import fail


@click.command("connect")
@click.argument("url", required=False)
@click.option("--token", envvar="VMCP_TOKEN",
              help="Bearer token for a gateway with [auth] (default: $VMCP_TOKEN).")
def connect_command(url: str | None, token: str | None) -> None:
    """Serve MCP on stdin/stdout by relaying to a running gateway, so every client shares
    one gateway and its backends.

    URL is the gateway's Streamable HTTP endpoint; without it, the HTTP front of the gateway
    running with this $VMCP_HOME (`vmcp start -d -t http`) is used.
    """
    try:
        target = url or running_gateway_url()
    except BridgeError as exc:
        fail(str(exc))
    headers = {"Authorization": f"Bearer {token}"} if token else None
    with contextlib.suppress(KeyboardInterrupt):
        eventloop.run(relay(target, headers))
