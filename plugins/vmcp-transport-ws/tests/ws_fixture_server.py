"""The backend the WebSocket tests mount: a tiny server written with the SDK's ``MCPServer``.

Run as ``python ws_fixture_server.py`` it serves stdio; the tests also run it in-process,
one instance per WebSocket connection, behind :class:`ws_harness.WebSocketBackend`.

- ``echo(text)`` answers ``text``;
- ``progress(steps)`` reports ``steps`` progress notifications, then answers;
- ``sample(prompt)`` asks the client ``sampling/createMessage`` and answers with its text;
- ``block()`` reports progress ``0`` ("started"), then never answers.
"""

from __future__ import annotations

import sys
from pathlib import Path

# First: a warm start when the test session offers one (tests/fixtures/servers/prefork.py).
sys.path.append(str(Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "servers"))
import prefork  # noqa: F401

# isort: split

import warnings

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import SamplingMessage, TextContent

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)


def build_server() -> MCPServer:
    """A fresh server instance (each connection gets its own)."""
    server = MCPServer("ws-fixture", version="1.0.0")

    @server.tool()
    def echo(text: str) -> str:
        """Answer the text unchanged."""
        return text

    @server.tool()
    async def progress(steps: int, ctx: Context) -> str:
        """Report ``steps`` progress notifications, then answer."""
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step}")
        return f"done after {steps} steps"

    @server.tool()
    async def sample(prompt: str, ctx: Context) -> str:
        """Ask the client's model; answer with what it said."""
        result = await ctx.session.create_message(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
            max_tokens=16,
            related_request_id=ctx.request_id,
        )
        content = result.content
        return "sampled: " + (content.text if isinstance(content, TextContent) else repr(content))

    @server.tool()
    async def block(ctx: Context) -> str:
        """Report that it started, then wait until cancelled or disconnected."""
        await ctx.report_progress(0, None, "started")
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    return server


if __name__ == "__main__":
    anyio.run(build_server().run_stdio_async)
