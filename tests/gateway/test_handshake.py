"""The gateway's own answers: ``initialize``, era probing, unknown methods, malformed input."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import anyio
import mcp.types as types
import pytest
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream
from gateway_harness import CONNECT_TIMEOUT, EVENT_TIMEOUT, Gateway
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


async def test_server_discover_is_refused_at_once(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """A dual-era client probes with ``server/discover`` first and must not wait 10 s."""
    gateway = make_gateway(two_backends)
    async with gateway.connect(initialize=False) as session:
        started = time.monotonic()
        with anyio.fail_after(CONNECT_TIMEOUT), pytest.raises(MCPError) as caught:
            await session.send_discover("2026-07-28")
        assert caught.value.code == -32601
        # The SDK gives up on discover after 10 s with -32001; -32601 proves the gateway answered.
        assert time.monotonic() - started < 9
        with anyio.fail_after(CONNECT_TIMEOUT):
            result = await session.initialize()
        assert result.protocol_version == "2025-11-25"
        assert session.server_info is not None and session.server_info.name == "vmcp"


async def test_server_discover_after_initialize(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as caught:
            await session.send_discover("2026-07-28")
        assert caught.value.code == -32601


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


class RawClient:
    """JSON-RPC lines written to and read from a gateway process's stdio, by hand."""

    def __init__(self, process: Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self._lines = TextReceiveStream(process.stdout)
        self._buffer = ""

    async def send_line(self, line: str) -> None:
        """Write one line (a newline is added)."""
        assert self.process.stdin is not None
        await self.process.stdin.send((line + "\n").encode())

    async def send(self, message: dict[str, Any]) -> None:
        """Write one JSON-RPC message."""
        await self.send_line(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        """Read the next line of stdout; every line must be one JSON object."""
        with anyio.fail_after(CONNECT_TIMEOUT):
            while "\n" not in self._buffer:
                self._buffer += await self._lines.receive()
        line, self._buffer = self._buffer.split("\n", 1)
        message = json.loads(line)  # nothing but protocol lines on stdout
        assert isinstance(message, dict)
        return message

    async def receive_response(self, request_id: int | str | None) -> dict[str, Any]:
        """Read until the response with ``request_id``, skipping notifications."""
        while True:
            message = await self.receive()
            if "method" not in message and message.get("id") == request_id:
                return message
            assert "method" in message, f"unexpected response {message}"


async def test_malformed_json_and_probe_on_raw_stdio(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """A bad line gets -32700 and the session goes on; ``server/discover`` gets -32601."""
    gateway = make_gateway({"beta": two_backends["beta"]})
    with gateway.log.open("a") as errlog:
        process = await anyio.open_process(
            [sys.executable, *gateway.command_args("start")],
            env={**_inherited_env(), **gateway.env()},
            stderr=errlog,
        )
        async with process:
            client = RawClient(process)
            try:
                await client.send_line(
                    '{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": '
                )
                error = await client.receive()
                assert error["error"]["code"] == -32700
                assert error.get("id") is None

                await client.send(
                    {"jsonrpc": "2.0", "id": "probe", "method": "server/discover", "params": {}}
                )
                probe = await client.receive_response("probe")
                assert probe["error"]["code"] == -32601

                await client.send(
                    {
                        "jsonrpc": "2.0",
                        "id": 2,
                        "method": "initialize",
                        "params": {
                            "protocolVersion": "2025-11-25",
                            "capabilities": {},
                            "clientInfo": {"name": "raw-test", "version": "0"},
                        },
                    }
                )
                init = await client.receive_response(2)
                assert init["result"]["protocolVersion"] == "2025-11-25"
                assert init["result"]["serverInfo"]["name"] == "vmcp"
                await client.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

                await client.send_line("this is not json")
                error = await client.receive()
                assert error["error"]["code"] == -32700

                await client.send({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}})
                tools = await client.receive_response(3)
                assert "beta__echo" in [tool["name"] for tool in tools["result"]["tools"]]

                await client.send({"jsonrpc": "2.0", "id": 4, "method": "no/such/method"})
                unknown = await client.receive_response(4)
                assert unknown["error"]["code"] == -32601
            finally:
                assert process.stdin is not None
                await process.stdin.aclose()
                with anyio.move_on_after(EVENT_TIMEOUT):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                    pytest.fail("vmcp start did not exit when its stdin closed")


def _inherited_env() -> dict[str, str]:
    """The environment the SDK's ``stdio_client`` would give a server (PATH, HOME...)."""
    from mcp.client.stdio import get_default_environment

    return get_default_environment()
