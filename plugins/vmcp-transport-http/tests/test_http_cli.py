"""``vmcp start --transport http --host H --port P``: the options over ``[transports.<name>]``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from http_harness import START_TIMEOUT, run_gateway, run_to_exit, write_config

pytestmark = pytest.mark.anyio


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config_with(tmp_path: Path, **transports: dict[str, object]) -> Path:
    tables = {f"transports.{name}": table for name, table in transports.items()}
    return write_config(tmp_path / "vmcp.toml", {**tables, "servers": {}})


async def test_port_and_host_override_the_configuration(tmp_path: Path) -> None:
    port = free_port()
    config = config_with(tmp_path, http={"port": 0, "host": "127.0.0.1"})
    options = ["--host", "localhost", "--port", str(port)]
    async with run_gateway(config, "http", options=options) as gateway:
        assert gateway.url == f"http://localhost:{port}/mcp"


async def test_host_applies_to_every_network_front(tmp_path: Path) -> None:
    config = config_with(tmp_path, http={"port": 0}, sse={"port": 0})
    async with run_gateway(config, "http", "sse", options=["--host", "localhost"]) as gateway:
        assert gateway.urls["http"].startswith("http://localhost:")
        assert gateway.urls["sse"].startswith("http://localhost:")


async def test_an_overridden_public_host_without_auth_is_refused(tmp_path: Path) -> None:
    config = config_with(tmp_path, http={"port": 0})
    status, stderr = await run_to_exit(config, "http", options=["--host", "0.0.0.0"])
    assert status == 2
    assert "refusing to serve http on '0.0.0.0' without authentication" in stderr


@pytest.mark.parametrize(
    ("fronts", "problem"),
    [
        (["http", "sse"], "--port gives one front its port, but 2 network fronts are starting "
                          "(http, sse)"),
        (["stdio"], "--host and --port set where a network front listens"),
    ],
)
async def test_port_needs_exactly_one_network_front(
    tmp_path: Path, fronts: list[str], problem: str
) -> None:
    status, stderr = await run_to_exit(config_with(tmp_path), *fronts, options=["--port", "0"])
    assert status == 2
    assert problem in stderr
    assert "Traceback" not in stderr


def test_a_detached_gateway_gets_the_options_too(tmp_path: Path) -> None:
    port = free_port()
    config = config_with(tmp_path, http={"port": 0})
    env = {**os.environ, "VMCP_HOME": str(tmp_path / "home")}

    def vmcp(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vmcp", "--config", str(config), *args], env=env,
            capture_output=True, text=True, timeout=START_TIMEOUT, stdin=subprocess.DEVNULL,
            check=False)

    started = vmcp("start", "-d", "-t", "http", "--port", str(port))
    try:
        assert started.returncode == 0, started.stderr
        assert f"http: http://127.0.0.1:{port}/mcp" in started.stdout
    finally:
        stopped = vmcp("stop")
    assert stopped.returncode == 0, stopped.stderr
