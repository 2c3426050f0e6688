"""Runs of the official conformance suite against a target: the fixture or the suite's reference
server, each either directly or mounted without a prefix behind ``vmcp start -t http``; and the
suite's client scenarios on ``conformance_client.py`` (vmcp's back side, or the SDK directly).

Shared by ``test_conformance.py`` and ``conformance_table.py``. Every process is started on a
free port and ended here; readiness is a line the process prints.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import anyio
from anyio.streams.text import TextReceiveStream
from conformance_suite import ScenarioResult, Suite, read_results
from http_harness import START_TIMEOUT, run_gateway, stop_process, write_config

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "conformance_server.py"
CLIENT = HERE / "conformance_client.py"
#: seconds one era of server scenarios may take (the suite runs them one after another)
LEG_TIMEOUT = 120.0
#: milliseconds the suite gives one client scenario (vmcp starts inside it)
CLIENT_SCENARIO_TIMEOUT_MS = 60_000
#: the targets of the server scenarios: (backend, how vmcp mounts it or None for directly).
#: Over stdio nothing relates a backend's request to the call it serves; over HTTP the
#: response stream of the call does.
TARGETS = {
    "fixture": ("fixture", None),
    "fixture via vmcp": ("fixture", "stdio"),
    "fixture via vmcp over http": ("fixture", "http"),
    "fixture via vmcp 2026-07-28 back": ("fixture", "stdio"),
    "fixture via vmcp over http 2026-07-28 back": ("fixture", "http"),
    "reference": ("reference", None),
    "reference via vmcp": ("reference", "http"),
    "reference via vmcp 2026-07-28 back": ("reference", "http"),
}
#: what targets set on their mount (the others take the shipped defaults: era "legacy").
#: With era "auto" vmcp finds that the backend speaks 2026-07-28 and talks to it so; the
#: reference server triggers its list changes with tools it lists nowhere
#: (``test_trigger_tool_change``), which vmcp forwards only when told to
MOUNT_SETTINGS: dict[str, dict[str, object]] = {
    "reference via vmcp 2026-07-28 back": {"era": "auto", "unlisted_tools": "forward"},
    "fixture via vmcp 2026-07-28 back": {"era": "auto"},
    "fixture via vmcp over http 2026-07-28 back": {"era": "auto"}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def _process_printing(command: list[str], ready: Callable[[str], str | None],
                            env: dict[str, str] | None = None) -> AsyncIterator[str]:
    """Run ``command``; yield what ``ready`` makes of the first stdout line it accepts."""
    process = await anyio.open_process(command, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=None, env=env)
    try:
        assert process.stdout is not None
        found: str | None = None
        with anyio.fail_after(START_TIMEOUT):
            buffer = ""
            async for chunk in TextReceiveStream(process.stdout):
                buffer += chunk
                *lines, buffer = buffer.split("\n")
                found = next((r for r in map(ready, lines) if r is not None), None)
                if found is not None:
                    break
        if found is None:
            raise AssertionError(f"{command[-1]} ended before it was ready")
        yield found
    finally:
        await stop_process(process)


def fixture_http() -> AbstractAsyncContextManager[str]:
    """Serve ``conformance_server.py`` over Streamable HTTP; yield its endpoint URL."""
    def port(line: str) -> str | None:
        return f"http://127.0.0.1:{line.split()[1]}/mcp" if line.startswith("PORT ") else None

    return _process_printing([sys.executable, str(FIXTURE), "http"], port)


def reference_http(suite: Suite) -> AbstractAsyncContextManager[str]:
    """Serve the suite's reference server; yield its endpoint URL."""
    number = _free_port()

    def listening(line: str) -> str | None:
        return f"http://localhost:{number}/mcp" if "running on" in line else None

    env = {**os.environ, "PORT": str(number)}
    return _process_printing(suite.reference_command(), listening, env=env)


@asynccontextmanager
async def behind_vmcp(workdir: Path, mount: dict[str, object]) -> AsyncIterator[str]:
    """Run ``vmcp start -t http`` with ``mount`` as its only server, no prefix; yield its URL."""
    config = write_config(workdir / "vmcp.toml", {
        "transports.http": {"port": 0},
        "servers.conformance": {**mount, "prefix": ""},
    })
    async with run_gateway(config, "http") as gateway:
        yield gateway.url


@asynccontextmanager
async def target(suite: Suite, name: str, workdir: Path) -> AsyncIterator[str]:
    """Start the target ``name`` (a key of :data:`TARGETS`); yield the URL the suite tests."""
    backend, mounted_over = TARGETS[name]
    if mounted_over == "stdio":
        mount: dict[str, object] = {"command": sys.executable, "args": [str(FIXTURE)],
                                    **MOUNT_SETTINGS.get(name, {})}
        async with behind_vmcp(workdir, mount) as url:
            yield url
        return
    serve = fixture_http() if backend == "fixture" else reference_http(suite)
    async with serve as backend_url:
        if mounted_over is None:
            yield backend_url
            return
        mount = {"transport": "http", "url": backend_url, **MOUNT_SETTINGS.get(name, {})}
        async with behind_vmcp(workdir, mount) as url:
            yield url


async def server_leg(suite: Suite, name: str, era: str, workdir: Path
                     ) -> tuple[dict[str, ScenarioResult], str]:
    """Run every server scenario of ``era`` against the target ``name``.

    Returns the results by scenario and the suite's output (for a failing test to show).
    """
    output = workdir / "results"
    async with target(suite, name, workdir) as url:
        with anyio.fail_after(LEG_TIMEOUT):
            run = await anyio.run_process(suite.server_run(url, era, output), check=False)
    text = (run.stdout + run.stderr).decode("utf-8", errors="replace")
    return read_results(output), text


def client_command(direct: bool) -> list[str]:
    """The client the suite drives: vmcp's back side, or (``direct``) the SDK alone."""
    return [sys.executable, str(CLIENT), *(["--direct"] if direct else [])]


async def client_scenario(suite: Suite, scenario: str, era: str, workdir: Path,
                          direct: bool = False) -> tuple[ScenarioResult | None, str]:
    """Run one client scenario of ``era``; return its result (``None``: none written) and the
    suite's output."""
    output = workdir / "results"
    command = suite.client_run(client_command(direct), scenario, era, output,
                               CLIENT_SCENARIO_TIMEOUT_MS)
    with anyio.fail_after(2 * CLIENT_SCENARIO_TIMEOUT_MS / 1000):
        run = await anyio.run_process(command, check=False)
    text = (run.stdout + run.stderr).decode("utf-8", errors="replace")
    return read_results(output, prefix="").get(scenario), text


def check_client_scenario(suite: Suite, scenario: str, era: str, workdir: Path) -> None:
    """Run one client scenario of ``era`` against vmcp's back side; fail with the suite's
    failed checks and output unless it passed."""
    result, output = anyio.run(client_scenario, suite, scenario, era, workdir)
    if result is None:
        raise AssertionError(f"{scenario} wrote no results:\n{output}")
    if not result.passed:
        raise AssertionError(f"{era}, {scenario}:\n" + "\n".join(result.failures) + "\n"
                             + output)
