"""``vmcp connect``: a stdio front that relays every message to a gateway already running.

A client that starts its servers over stdio (Claude Desktop, most IDEs) would otherwise get
a gateway of its own, with its own backends. Through this bridge every such client shares
one long-running gateway (``vmcp start -d``). Two ways there:

- the control socket of the gateway running with this home (the default): the connection
  is turned into an MCP session (:mod:`vmcp.control.mcpsocket`) and bytes are copied both
  ways; owner-only, no network front or token needed;
- a gateway's Streamable HTTP endpoint (``vmcp connect URL``): each message read on stdin
  is posted to it, and everything the gateway sends (responses, notifications, its own
  requests such as sampling or elicitation) is written to stdout.

The bridge relays JSON-RPC messages as they are and holds no protocol state of its own.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from typing import Any

import anyio
import httpx2
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from mcp.client.streamable_http import streamable_http_client
from mcp.server.stdio import stdio_server

from vmcp.control.client import ControlClient, NotRunning
from vmcp.control.paths import RunPaths
from vmcp.control.protocol import MAX_LINE, MCP_OP, ControlError, request, result_of


class BridgeError(Exception):
    """There is no gateway to relay to, or it cannot be reached."""


def running_gateway(paths: RunPaths | None = None) -> dict[str, Any]:
    """The status of the gateway running with this home (what ``vmcp status`` shows).

    :raises BridgeError: no gateway runs with this home, or it does not answer.
    """
    paths = paths or RunPaths.current()
    if not paths.socket.exists():
        raise BridgeError(_NOT_RUNNING)
    try:
        status: dict[str, Any] = ControlClient(paths, timeout=5.0).call("status")
    except (NotRunning, ControlError, OSError) as exc:
        raise BridgeError(f"the gateway of this home does not answer ({exc})") from exc
    return status


_NOT_RUNNING = ("no gateway is running with this home: start one with "
                "`vmcp start -d -t http`, or give its URL")


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


_CHUNK = 64 * 1024


def open_session_socket(paths: RunPaths | None = None,
                        persona: str | None = None) -> tuple[socket.socket, bytes]:
    """A control connection to the gateway running with this home, turned into an MCP
    session (as ``persona``, else the gateway's default); with the bytes already read past
    the answer.

    :raises BridgeError: no gateway runs with this home, or it refused the session.
    """
    paths = paths or RunPaths.current()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(paths.socket))
    except OSError as exc:
        sock.close()
        raise BridgeError(_NOT_RUNNING) from exc
    try:
        sock.sendall(request(MCP_OP, {"persona": persona} if persona else None))
        received = b""
        while b"\n" not in received and len(received) <= MAX_LINE:
            chunk = sock.recv(_CHUNK)
            if not chunk:
                raise ControlError("the gateway closed the connection")
            received += chunk
        answer, _, rest = received.partition(b"\n")
        result_of(answer)
    except (ControlError, OSError) as exc:
        sock.close()
        raise BridgeError(f"the gateway of this home refused an MCP session ({exc})") from exc
    return sock, rest


def relay_socket(sock: socket.socket, first: bytes = b"") -> None:
    """Copy stdin to the session socket and the socket to stdout until the gateway ends the
    session (which it does once stdin has ended and its answers are written)."""

    def client_to_gateway() -> None:
        with contextlib.suppress(OSError):
            while data := os.read(0, _CHUNK):
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)

    # A daemon thread: one blocked on stdin must not keep the process once the gateway is gone.
    threading.Thread(target=client_to_gateway, name="stdin", daemon=True).start()
    with sock, contextlib.suppress(OSError):
        data = first
        while data:
            _write_all(1, data)
            data = sock.recv(_CHUNK)
        while data := sock.recv(_CHUNK):
            _write_all(1, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
