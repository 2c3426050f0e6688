"""``vmcp connect``: serve stdio by relaying to the gateway already running."""

from __future__ import annotations

import contextlib

import click

from vmcp import eventloop
from vmcp.bridge import BridgeError, open_session_socket, relay, relay_socket
from vmcp.cli.completion import complete_persona_names
from vmcp.cli.output import fail
from vmcp.persona import PersonaError, PersonaStore


@click.command("connect")
@click.argument("url", required=False)
@click.option("--token", envvar="VMCP_TOKEN",
              help="Bearer token for a URL of a gateway with [auth] (default: $VMCP_TOKEN).")
@click.option("--persona", shell_complete=complete_persona_names,
              help="Act as this persona (over the control socket; over HTTP the token "
                   "decides).")
def connect_command(url: str | None, token: str | None, persona: str | None) -> None:
    """Serve MCP on stdin/stdout by relaying to a running gateway, so every client shares
    one gateway and its backends.

    Without URL, the gateway running with this $VMCP_HOME (`vmcp start -d`), over its
    control socket (owner-only: no token needed). With URL, that Streamable HTTP endpoint.
    """
    if url is None:
        try:
            if persona:
                PersonaStore.default().load(persona)
            sock, first = open_session_socket(persona=persona)
        except (BridgeError, PersonaError) as exc:
            fail(str(exc))
        with contextlib.suppress(KeyboardInterrupt):
            relay_socket(sock, first)
        return
    if persona:
        fail("--persona works over the control socket (no URL); over HTTP the token decides "
             "the persona", 2)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    with contextlib.suppress(KeyboardInterrupt):
        eventloop.run(relay(url, headers))
