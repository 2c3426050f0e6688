"""``vmcp start --transport ws``: beside other fronts, refusing unsafe settings, registered."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from vmcp_transport_ws.transport import WebSocketTransport
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from ws_harness import CONNECT_TIMEOUT, EVENT_TIMEOUT, fixture_mount, run_gateway, write_config
from ws_harness import ws_session as open_ws_session

from vmcp.plugins import load_driver

INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "stdio-client", "version": "0"}},
}


def test_ws_is_a_registered_transport_driver() -> None:
    assert load_driver("transports", "ws") is WebSocketTransport


@pytest.mark.anyio
async def test_ws_beside_stdio_and_http_in_one_process(tmp_path: Path) -> None:
    config = write_config(tmp_path / "vmcp.toml", {
        "transports.ws": {"port": 0},
        "transports.http": {"port": 0},
        "servers.fx": fixture_mount(),
    })
    async with run_gateway(config, "stdio", "http", "ws", log=tmp_path / "gateway.log") as gateway:
        assert (await gateway.url("http")).startswith("http://127.0.0.1:")
        await gateway.url("stdio")
        process = gateway.process
        assert process.stdin is not None and process.stdout is not None
        async with open_ws_session(await gateway.url("ws")) as (session, websocket):
            with anyio.fail_after(CONNECT_TIMEOUT):
                await process.stdin.send((json.dumps(INITIALIZE) + "\n").encode())
                line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 1 << 20)
            assert json.loads(line)["result"]["serverInfo"]["name"] == "vmcp"
            with anyio.fail_after(EVENT_TIMEOUT):
                assert (await session.call_tool("fx__echo", {"text": "ws"})).content
            # the stdio client leaving ends the gateway, which says goodbye to ws clients
            await process.stdin.aclose()
            with anyio.fail_after(EVENT_TIMEOUT):
                await websocket.wait_closed()
            assert websocket.close_code == CloseCode.GOING_AWAY
            with pytest.raises(ConnectionClosed):
                await websocket.send("{}")
        with anyio.fail_after(EVENT_TIMEOUT):
            assert await process.wait() == 0


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"host": "0.0.0.0", "port": 0}, "refusing to serve ws on '0.0.0.0' without auth"),
        ({"path": "mcp"}, "transports.ws.path: must be an absolute URL path"),
        ({"port": 0, "max_message_bytes": 10}, "transports.ws.max_message_bytes"),
    ],
)
def test_unsafe_or_invalid_settings_are_refused(
    tmp_path: Path, settings: dict[str, object], problem: str
) -> None:
    marker = tmp_path / "spawned"  # the backend creates it as soon as it is spawned
    backend = {"command": sys.executable, "args": ["-c", f"open({str(marker)!r}, 'w').close()"]}
    config = write_config(tmp_path / "vmcp.toml", {"transports.ws": settings,
                                                   "servers.marker": backend})
    finished = subprocess.run(
        [sys.executable, "-m", "vmcp", "--config", str(config), "start", "--transport", "ws"],
        capture_output=True, text=True, timeout=CONNECT_TIMEOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "VMCP_HOME": str(tmp_path / "home")},
    )
    assert finished.returncode == 2, finished.stderr
    assert problem in finished.stderr
    assert "Traceback" not in finished.stderr
    assert not marker.exists()  # refused before any backend was started


def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path / "vmcp.toml", {"transports.ws": {"port": port},
                                                       "servers": {}})
        finished = subprocess.run(
            [sys.executable, "-m", "vmcp", "--config", str(config), "start", "-t", "ws"],
            capture_output=True, text=True, timeout=CONNECT_TIMEOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "VMCP_HOME": str(tmp_path / "home")},
        )
    assert finished.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in finished.stderr
    assert "Traceback" not in finished.stderr
