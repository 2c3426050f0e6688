"""A small MCP server written with the SDK, used as a backend by the HTTP transport tests.

``python http_fixture_server.py stdio`` serves stdio. ``... http [--json]`` serves Streamable
HTTP (``--json``: plain JSON replies; ``--stateless``: no session id; ``--get-status N``: GET
answered with HTTP N, as many hosted stateless servers do) and ``... sse`` the legacy HTTP+SSE
transport, both on a loopback port (a free one, or ``--port N``) printed as ``PORT <n>`` on
stdout once listening.

Tools: ``echo(text)``, ``add(a, b)``, ``slow(steps)`` (a progress notification and a log line
per step), ``sample(prompt)`` (asks the client to sample), ``header(name)`` (the value of an
HTTP request header, or ``"-"``), ``ask(who, together)`` (waits until ``together`` calls of
``ask`` are running in this process, then logs, samples, elicits and lists roots on behalf of
its own request, and returns what it got back or the error for each), ``ask_at_once(who)``
(asks for a sample and an elicitation at the same time; what it got or the error for each),
``block(key)`` (reports progress once, then waits until cancelled),
``elicit_then_block(key)`` (elicits, then waits until cancelled), ``was_cancelled(key)``
(answers once ``block(key)`` has been cancelled), ``region(region, query)`` (``region`` is
mirrored into the ``Mcp-Param-Region`` header: ``x-mcp-header``), ``grow(name)`` (adds a tool
``name`` and announces that the tool list changed), ``hold(key)`` and ``hold_write(key)``
(wait until ``let_go(key)``), ``where(key)`` (once a hold of ``key`` arrived, the
``Mcp-Session-Id`` each came with, so a test knows which client connection carries it).
"""

from __future__ import annotations

import sys
from pathlib import Path

# First: a warm start when the test session offers one (tests/fixtures/servers/prefork.py).
sys.path.append(str(Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "servers"))
import prefork  # noqa: F401

# isort: split

import json
import socket
import warnings
from typing import Annotated, Any

import anyio
import mcp.types as types
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import ServerMessageMetadata
from pydantic import Field

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

server = MCPServer("http-fixture")


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return f"echo: {text}"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def slow(steps: int, ctx: Context) -> str:
    """Report progress and log once per step, then answer."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await ctx.info(f"did step {step}")
    return f"done {steps}"


@server.tool()
async def sample(prompt: str, ctx: Context) -> str:
    """Ask the client's model; return what it said."""
    result = await ctx.session.create_message(
        [types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
        max_tokens=50,
        related_request_id=ctx.request_id,
    )
    content = result.content
    return f"sampled: {content.text if isinstance(content, types.TextContent) else content}"


_asking: list[anyio.Event] = []


async def _together(count: int) -> None:
    """Return once ``count`` calls of ``ask`` are waiting here (all of them at once)."""
    arrived = anyio.Event()
    _asking.append(arrived)
    if len(_asking) >= count:
        for event in _asking:
            event.set()
        _asking.clear()
    await arrived.wait()


@server.tool()
async def ask(who: str, together: int, ctx: Context) -> str:
    """Once ``together`` calls are in flight, ask the client for input for this call."""
    await _together(together)
    session, rid = ctx.session, ctx.request_id
    await session.send_log_message("info", f"log for {who}", related_request_id=rid)
    answers: dict[str, Any] = {}
    try:
        sampled = await session.create_message(
            [types.SamplingMessage(role="user", content=types.TextContent(type="text", text=who))],
            max_tokens=10, related_request_id=rid)
        content = sampled.content
        answers["sampling"] = content.text if isinstance(content, types.TextContent) else "?"
    except MCPError as exc:
        answers["sampling"] = f"refused: {exc.error.message}"
    try:
        schema = {"type": "object", "properties": {"name": {"type": "string"}}}
        elicited = await session.elicit_form(f"who is {who}?", schema, related_request_id=rid)
        answers["elicitation"] = (elicited.content or {}).get("name")
    except MCPError as exc:
        answers["elicitation"] = f"refused: {exc.error.message}"
    try:
        roots = await session.send_request(
            types.ListRootsRequest(), types.ListRootsResult,
            metadata=ServerMessageMetadata(related_request_id=rid))
        answers["roots"] = [str(root.uri) for root in roots.roots]
    except MCPError as exc:
        answers["roots"] = f"refused: {exc.error.message}"
    return json.dumps(answers)


@server.tool()
async def ask_at_once(who: str, ctx: Context) -> str:
    """Ask the client for a sample and an elicitation in the same breath."""
    session, rid = ctx.session, ctx.request_id
    answers: dict[str, Any] = {}

    async def sample() -> None:
        try:
            sampled = await session.create_message(
                [types.SamplingMessage(role="user",
                                       content=types.TextContent(type="text", text=who))],
                max_tokens=10, related_request_id=rid)
            content = sampled.content
            answers["sampling"] = content.text if isinstance(content, types.TextContent) else "?"
        except MCPError as exc:
            answers["sampling"] = f"refused: {exc.error.message}"

    async def elicit() -> None:
        try:
            schema = {"type": "object", "properties": {"name": {"type": "string"}}}
            elicited = await session.elicit_form(f"who is {who}?", schema,
                                                 related_request_id=rid)
            answers["elicitation"] = (elicited.content or {}).get("name")
        except MCPError as exc:
            answers["elicitation"] = f"refused: {exc.error.message}"

    async with anyio.create_task_group() as group:
        group.start_soon(sample)
        group.start_soon(elicit)
    return json.dumps(answers, sort_keys=True)


_cancelled: dict[str, anyio.Event] = {}


@server.tool()
async def block(key: str, ctx: Context) -> str:
    """Report progress once, then wait until the call is cancelled."""
    await ctx.report_progress(0, 1, "blocked")
    try:
        await anyio.sleep_forever()
    finally:
        _cancelled.setdefault(key, anyio.Event()).set()
    return "unreachable"


@server.tool()
async def elicit_then_block(key: str, ctx: Context) -> str:
    """Ask the client for a name, then wait until the call is cancelled."""
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    await ctx.session.elicit_form("who?", schema, related_request_id=ctx.request_id)
    try:
        await anyio.sleep_forever()
    finally:
        _cancelled.setdefault(key, anyio.Event()).set()
    return "unreachable"


@server.tool()
async def was_cancelled(key: str) -> str:
    """Answer once ``block(key)`` has been cancelled."""
    await _cancelled.setdefault(key, anyio.Event()).wait()
    return f"{key} cancelled"


_held: dict[str, list[str]] = {}
_arrived: dict[str, anyio.Event] = {}
_let_go: dict[str, anyio.Event] = {}


async def _hold(key: str, ctx: Context) -> str:
    _held.setdefault(key, []).append((ctx.headers or {}).get("mcp-session-id", "-"))
    _arrived.setdefault(key, anyio.Event()).set()
    await _let_go.setdefault(key, anyio.Event()).wait()
    return f"held {key}"


@server.tool()
async def hold(key: str, ctx: Context) -> str:
    """Wait until ``let_go(key)``; a test lists it among a mount's read-only tools."""
    return await _hold(key, ctx)


@server.tool()
async def hold_write(key: str, ctx: Context) -> str:
    """Wait until ``let_go(key)`` (a tool that may have effects)."""
    return await _hold(key, ctx)


@server.tool()
async def where(key: str) -> str:
    """Once a ``hold`` of ``key`` arrived: the session id of each connection it came on."""
    await _arrived.setdefault(key, anyio.Event()).wait()
    return ",".join(_held[key])


@server.tool()
def let_go(key: str) -> str:
    """End the holds of ``key``, those waiting and those to come."""
    _let_go.setdefault(key, anyio.Event()).set()
    return f"let go {key}"


@server.tool()
def region(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
           query: str) -> str:
    """Run a query in a region (whose value HTTP clients mirror into a header)."""
    return f"{query} in {region}"


@server.tool()
async def grow(name: str, ctx: Context) -> str:
    """Add a tool called ``name`` (it answers its own name) and say the list changed."""

    def grown() -> str:
        return name

    server.add_tool(grown, name=name, description=f"grown as {name}")
    await ctx.session.send_tool_list_changed()
    return f"grew {name}"


@server.tool()
def header(name: str, ctx: Context) -> str:
    """The value of one header of the HTTP request that carried this call."""
    headers = ctx.headers or {}
    return headers.get(name.lower(), "-")


def _refusing_get(app: Any, status: int) -> Any:
    """``app``, except that every GET is answered ``status`` with an empty body."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    return wrapped


async def _serve_http(
    mode: str, json_response: bool, stateless: bool, get_status: int | None, port: int
) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)  # connections wait in the backlog until the server accepts them
    if mode == "http":
        app = server.streamable_http_app(json_response=json_response, stateless_http=stateless)
    else:
        app = server.sse_app()
    if get_status is not None:
        app = _refusing_get(app, get_status)
    # h11: with httptools installed uvicorn would parse with it, which keeps a header
    # value's trailing whitespace, and the SDK compares such a value as it is
    config = uvicorn.Config(app, http="h11", log_level="warning", lifespan="on")
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> None:
    """Serve in the mode named on the command line."""
    mode = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if mode == "stdio":
        server.run("stdio")
    else:
        port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
        get_status = (int(sys.argv[sys.argv.index("--get-status") + 1])
                      if "--get-status" in sys.argv else None)
        anyio.run(_serve_http, mode, "--json" in sys.argv, "--stateless" in sys.argv, get_status,
                  port)


if __name__ == "__main__":
    main()
