"""One bad line never ends or wedges anything: the stdio front and a stdio backend, for real.

Lines with a lone surrogate (escaped, or as the bytes ``ED A0 80``) or nested thousands deep
get a clear error naming their id when it is readable, and the session goes on; a backend
writing such lines keeps its mount working.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from gateway_harness import FIXTURE_SERVERS, Gateway, RawClient, raw_gateway, raw_initialize

pytestmark = pytest.mark.anyio

HOSTILE = {"command": sys.executable, "args": [str(FIXTURE_SERVERS / "hostile.py")]}
DEEP = "[" * 2000 + "]" * 2000


async def _still_serves(client: RawClient, request_id: int) -> None:
    await client.send({"jsonrpc": "2.0", "id": request_id, "method": "ping"})
    assert (await client.receive_response(request_id))["result"] == {}
    await client.send({"jsonrpc": "2.0", "id": request_id + 1, "method": "tools/call",
                       "params": {"name": "h__echo", "arguments": {"text": "ok"}}})
    answer = await client.receive_response(request_id + 1)
    assert answer["result"]["content"][0]["text"] == "hostile: ok"


async def test_bad_client_lines_get_errors_and_the_gateway_goes_on(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway({"h": HOSTILE})
    async with raw_gateway(gateway) as client:
        await raw_initialize(client)
        bad: list[tuple[bytes, Any, int]] = [
            (b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"\\ud800"}}', 1, -32700),
            (b'{"jsonrpc":"2.0","id":2,"method":"\\ud800"}', 2, -32700),
            (b'{"jsonrpc":"2.0","id":"\\ud800","method":"ping"}', None, -32700),
            (b'{"jsonrpc":"2.0","id":3,"method":"ping","params":{"x":"\xed\xa0\x80"}}', 3,
             -32700),
            (b'{"jsonrpc":"2.0","id":4,"method":"ping","params":{"x":' + DEEP.encode() + b"}}",
             4, -32600),
            (b'{"jsonrpc":"2.0","id":5,"method":null}', 5, -32600),
            (b'{"jsonrpc":"2.0","id":6}', 6, -32600),
        ]
        for line, request_id, code in bad:
            assert client.process.stdin is not None
            await client.process.stdin.send(line + b"\n")
            error = await client.receive()
            assert error["id"] == request_id, line
            assert error["error"]["code"] == code, line
        await _still_serves(client, 100)
        # A surrogate pair written as escapes is one ordinary character.
        await client.send_line('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":'
                               '{"name":"h__echo","arguments":{"text":"\\ud83d\\ude00"}}}')
        answer = await client.receive_response(7)
        assert answer["result"]["content"][0]["text"] == "hostile: \U0001f600"
        await client.send({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
                           "params": {"name": "h__echo", "arguments": [1, 2]}})
        refused = await client.receive_response(8)
        assert refused["error"]["code"] == -32602
        await _still_serves(client, 200)
    assert client.process.returncode == 0


async def test_requests_before_initialize_are_refused(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway({"h": HOSTILE})
    async with raw_gateway(gateway) as client:
        await client.send({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        refused = await client.receive_response(1)
        assert refused["error"]["code"] == -32600
        assert "initialize" in refused["error"]["message"]
        await client.send({"jsonrpc": "2.0", "id": 2, "method": "ping"})
        assert (await client.receive_response(2))["result"] == {}
        await raw_initialize(client)
        await client.send({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
        assert [t["name"] for t in (await client.receive_response(3))["result"]["tools"]] == [
            "h__echo", "h__noisy"]


async def test_a_backend_writing_bad_lines_keeps_its_mount_working(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway({"h": HOSTILE})
    async with raw_gateway(gateway) as client:
        await raw_initialize(client)
        noise = ["deep", "garbage", "bad_utf8", "surrogate", "stray", "array", "blank", "null"]
        await client.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "h__noisy", "arguments": {"text": "after noise", "noise": noise}}})
        answer = await client.receive_response(1)
        assert answer["result"]["content"][0]["text"] == "hostile: after noise"
        for request_id, kind in ((2, "surrogate_answer"), (3, "bad_utf8_answer")):
            await client.send({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                               "params": {"name": "h__noisy",
                                          "arguments": {"text": "x", "noise": ["deep", kind]}}})
            failed = await client.receive_response(request_id)
            assert failed["error"]["code"] == -32603, failed
            assert "not valid JSON-RPC" in failed["error"]["message"]
        await _still_serves(client, 10)
