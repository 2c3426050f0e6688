"""``vmcp connect``: serve stdio by relaying to the gateway already running."""

from __future__ import annotations

import contextlib

import click

from vmcp import eventloop
from vmcp.bridge import BridgeError, open_session_socket, relay, relay_socket
from vmcp.cli.output import fail


@click.command("connect")
@click.argument("url", required=False)
@click.option("--token", envvar="VMCP_TOKEN",
              help="Bearer token for a URL of a gateway with [auth] (default: $VMCP_TOKEN).")
def connect_command(url: str | None, token: str | None) -> None:
    """Serve MCP on stdin/stdout by relaying to a running gateway, so every client shares
    one gateway and its backends.

    Without URL, the gateway running with this $VMCP_HOME (`vmcp start -d`), over its
    control socket (owner-only: no token needed). With URL, that Streamable HTTP endpoint.
    """
    if url is None:
        try:
            sock, first = open_session_socket()
        except BridgeError as exc:
            fail(str(exc))
        with contextlib.suppress(KeyboardInterrupt):
            relay_socket(sock, first)
        return
    headers = {"Authorization": f"Bearer {token}"} if token else None
    with contextlib.suppress(KeyboardInterrupt):
        eventloop.run(relay(url, headers))
