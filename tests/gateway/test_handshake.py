"""The gateway's own answers: ``initialize``, era probing, unknown methods, malformed input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from gateway_harness import (
    BETA,
    CONNECT_TIMEOUT,
    EVENT_TIMEOUT,
    Gateway,
    backend,
    raw_gateway,
    raw_initialize,
)
from mcp.shared.exceptions import MCPError

pytestmark = pytest.mark.anyio


async def test_initialize_result(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        result = gateway.initialize_result
        assert result is not None
        assert result.protocol_version == "2025-11-25"
        assert result.server_info.name == "vmcp"
        caps = result.capabilities
        assert caps.tools is not None
        assert caps.prompts is not None
        assert caps.resources is not None and caps.resources.subscribe
        assert caps.logging is not None
        assert caps.completions is not None
        assert session.protocol_version == "2025-11-25"
        await session.send_ping()


async def test_server_discover_answers_then_initialize_still_works(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """A dual-era client probes with ``server/discover``: the gateway answers it at once (in
    the modern era), and the handshake still works on the same connection."""
    gateway = make_gateway(two_backends)
    async with gateway.connect(initialize=False) as session:
        with anyio.fail_after(CONNECT_TIMEOUT):
            discovered = await session.send_discover("2026-07-28")
        assert "2026-07-28" in discovered["supportedVersions"]
        assert "2025-11-25" in discovered["supportedVersions"]
        with anyio.fail_after(CONNECT_TIMEOUT):
            result = await session.initialize()
        assert result.protocol_version == "2025-11-25"
        assert session.server_info is not None and session.server_info.name == "vmcp"


async def test_server_discover_after_initialize(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        with anyio.fail_after(EVENT_TIMEOUT):
            discovered = await session.send_discover("2026-07-28")
        assert discovered["resultType"] == "complete"
        await session.send_ping()  # the handshake-era session goes on


async def test_unknown_method(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as caught:
            await session.send_request(
                types.Request(method="vmcp/no-such-method", params=None), types.EmptyResult
            )
        assert caught.value.code == -32601
        await session.send_ping()  # the session goes on


async def test_malformed_json_and_probe_on_raw_stdio(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """A bad line gets -32700 (with its id when readable) and the session goes on;
    ``server/discover`` is answered (the 2026-07-28 era) and the handshake still follows."""
    gateway = make_gateway({"beta": two_backends["beta"]})
    async with raw_gateway(gateway) as client:
        await client.send_line('{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": ')
        error = await client.receive()
        assert error["error"]["code"] == -32700
        assert error.get("id") == 1  # readable although the line is cut short

        await client.send(
            {"jsonrpc": "2.0", "id": "probe", "method": "server/discover", "params": {}}
        )
        probe = await client.receive_response("probe")
        assert "2026-07-28" in probe["result"]["supportedVersions"]

        init = await raw_initialize(client)
        assert init["result"]["protocolVersion"] == "2025-11-25"
        assert init["result"]["serverInfo"]["name"] == "vmcp"

        await client.send_line("this is not json")
        error = await client.receive()
        assert error["error"]["code"] == -32700

        await client.send({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}})
        tools = await client.receive_response(3)
        assert "beta__echo" in [tool["name"] for tool in tools["result"]["tools"]]

        await client.send({"jsonrpc": "2.0", "id": 4, "method": "no/such/method"})
        unknown = await client.receive_response(4)
        assert unknown["error"]["code"] == -32601


async def test_old_protocol_version_is_echoed(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """A client offering an older handshake revision the gateway supports gets it echoed."""
    gateway = make_gateway({"beta": two_backends["beta"]})
    async with raw_gateway(gateway) as client:
        await client.send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "raw-test", "version": "0"},
                },
            }
        )
        init = await client.receive_response(1)
        assert init["result"]["protocolVersion"] == "2025-06-18"


async def test_stdio_from_and_to_regular_files(
    make_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    """Requests read from a file and answers written to one (no pipes: `vmcp start < f > g`)."""
    gateway = make_gateway({"beta": backend(BETA)})
    requests, answers = tmp_path / "requests.jsonl", tmp_path / "answers.jsonl"
    requests.write_text(json.dumps({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "file", "version": "0"}}}) + "\n")
    with requests.open("rb") as stdin, answers.open("wb") as stdout, anyio.fail_after(30):
        process = await anyio.run_process(
            [sys.executable, *gateway.command_args("start")], stdin=stdin, stdout=stdout,
            env={**os.environ, **gateway.env()}, check=False)
    assert process.returncode == 0
    answer = json.loads(answers.read_text().splitlines()[0])
    assert answer["id"] == 1 and answer["result"]["serverInfo"]["name"] == "vmcp"


async def test_stdio_on_dev_null_ends_cleanly(make_gateway: Callable[..., Gateway]) -> None:
    """A supervisor that gives the gateway /dev/null (no client): it ends at EOF, exit 0."""
    gateway = make_gateway({"beta": backend(BETA)})
    with anyio.fail_after(30):
        process = await anyio.run_process(
            [sys.executable, *gateway.command_args("start")], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, env={**os.environ, **gateway.env()}, check=False)
    assert process.returncode == 0, process.stderr
