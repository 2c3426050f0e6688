"""The fast fixture backend: an MCP server over stdio doing the least possible work per call.

Raw asyncio (a protocol on the pipes, no streams, no SDK), so that what a benchmark measures
is the cost of whatever sits between the client and this process. It answers ``initialize``,
``ping``, ``tools/list`` (a list built once, served from pre-encoded bytes) and ``tools/call``
(echoes ``arguments.text``). Lines arriving together are answered with one write.

Run as ``python -m bench.fixture_backend [--tools N] [--list-changed] [--delay SECONDS]``.
``--delay`` sleeps before serving, standing in for a server's own start-up work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


class Fixture:
    """What the fixture answers, independent of the wire (stdio here, HTTP in ``http_fixture``)."""

    def __init__(self, tools: int, list_changed: bool) -> None:
        self.capabilities = {"tools": {"listChanged": list_changed}}
        listing = {"tools": [tool(n) for n in range(tools)]}
        self._tools_list = _dumps(listing).encode()

    def answer(self, message: Any) -> bytes | None:
        """The encoded response to one message (no newline), or None for a notification."""
        if not isinstance(message, dict) or "method" not in message or "id" not in message:
            return None
        request_id = _dumps(message["id"]).encode()
        method = message["method"]
        params = message.get("params") or {}
        if method == "tools/call":
            arguments = params.get("arguments") or {}
            result = {"content": [{"type": "text", "text": str(arguments.get("text", ""))}]}
            body = _dumps(result).encode()
        elif method == "tools/list":
            body = self._tools_list
        elif method == "initialize":
            asked = params.get("protocolVersion")
            body = _dumps({
                "protocolVersion": asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[-1],
                "capabilities": self.capabilities,
                "serverInfo": {"name": "bench-fixture", "version": "1"},
            }).encode()
        elif method == "ping":
            body = b"{}"
        else:
            error = _dumps({"code": -32601, "message": f"Method not found: {method}"}).encode()
            return b'{"jsonrpc":"2.0","id":' + request_id + b',"error":' + error + b"}"
        return b'{"jsonrpc":"2.0","id":' + request_id + b',"result":' + body + b"}"


def tool(n: int) -> dict[str, Any]:
    """Tool number ``n``: a typical definition (name, description, a one-argument schema)."""
    return {
        "name": f"tool_{n}",
        "description": f"Fixture tool number {n}: echoes its text argument back.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string", "description": "what to echo"}},
            "required": ["text"],
        },
    }


class _StdioServer(asyncio.Protocol):
    """Splits stdin into lines and writes the answers of each chunk at once."""

    def __init__(self, fixture: Fixture, out: asyncio.WriteTransport, done: asyncio.Future[None]):
        self._fixture = fixture
        self._out = out
        self._done = done
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        answers = []
        for line in lines:
            if line.strip():
                answer = self._fixture.answer(json.loads(line))
                if answer is not None:
                    answers.append(answer)
        if answers:
            answers.append(b"")
            self._out.write(b"\n".join(answers))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._done.set_result(None)


async def serve_stdio(fixture: Fixture) -> None:
    """Serve ``fixture`` on this process's stdin/stdout until stdin closes."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    out, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(1, "wb", 0))
    await loop.connect_read_pipe(
        lambda: _StdioServer(fixture, out, done), os.fdopen(0, "rb", 0))
    await done


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tools", type=int, default=1, help="how many tools to list")
    parser.add_argument("--list-changed", action="store_true",
                        help="declare tools.listChanged (the gateway then trusts its snapshot)")
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds to wait before serving (simulated start-up work)")
    args = parser.parse_args(argv)
    if args.delay > 0:
        time.sleep(args.delay)
    try:
        asyncio.run(serve_stdio(Fixture(args.tools, args.list_changed)))
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)


if __name__ == "__main__":
    main()
