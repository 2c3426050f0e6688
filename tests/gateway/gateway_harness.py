"""Helpers for the end-to-end gateway tests (imported by ``conftest.py`` and the tests).

Every test writes its own configuration into a temporary folder, starts ``vmcp start`` as a
child process through the SDK's ``stdio_client`` and talks to it with a real ``ClientSession``.
Backends are the fixture servers in ``tests/fixtures/servers/`` (and, in one test, the PyPI
package ``mcp-server-time``). The ``stdio_client`` context ends the gateway, and the gateway
ends its backends, so no process outlives its test.

Waiting is done on events set from the client's callbacks (``Notifications.wait_for``), each
wait guarded by ``anyio.fail_after``; no test sleeps to synchronise.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import mcp.types as types
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.stdio import get_default_environment

FIXTURE_SERVERS = Path(__file__).resolve().parent.parent / "fixtures" / "servers"
ALPHA = FIXTURE_SERVERS / "alpha.py"
BETA = FIXTURE_SERVERS / "beta.py"

#: alpha's tools, in the order it lists them
ALPHA_TOOLS = [
    "echo",
    "add",
    "fail",
    "with_meta",
    "links",
    "slow",
    "log_levels",
    "sample",
    "elicit_form",
    "elicit_url",
    "roots",
    "block",
    "hang",
    "was_cancelled",
    "crash",
    "add_tool",
    "touch",
    "add_prompt",
    "add_resource",
]

#: Seconds allowed for the gateway (and its backends) to start and answer ``initialize``.
CONNECT_TIMEOUT = 30.0
#: Seconds allowed for anything a test waits for after that.
EVENT_TIMEOUT = 10.0

T = TypeVar("T")


def backend(script: Path, **settings: Any) -> dict[str, Any]:
    """A stdio mount running a fixture server file with this interpreter."""
    return {"command": sys.executable, "args": [str(script)], **settings}


def module_backend(module: str, **settings: Any) -> dict[str, Any]:
    """A stdio mount running ``python -m module`` with this interpreter."""
    return {"command": sys.executable, "args": ["-m", module], **settings}


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    # JSON strings, numbers and booleans are valid TOML values.
    return json.dumps(value)


def write_config(
    path: Path, servers: dict[str, dict[str, Any]], gateway: dict[str, Any] | None = None
) -> Path:
    """Write a ``vmcp.toml`` with a ``[gateway]`` table and one ``[servers.<id>]`` per mount.

    Mounts are written in the order of ``servers``, which is the mount-config order.
    """
    lines: list[str] = []
    if gateway:
        lines.append("[gateway]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in gateway.items()]
        lines.append("")
    for mount_id, settings in servers.items():
        lines.append(f"[servers.{mount_id}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@contextmanager
def unwrap_single_errors() -> Iterator[None]:
    """Re-raise the lone exception inside nested task-group exception groups (readable failures)."""
    try:
        yield
    except BaseExceptionGroup as group:
        inner: BaseException = group
        while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
            inner = inner.exceptions[0]
        if inner is group:
            raise
        raise inner from None


class Notifications:
    """A ``message_handler`` that records every server notification and lets tests await one."""

    def __init__(self) -> None:
        self.items: list[types.ServerNotification | Exception] = []
        self._changed = anyio.Event()

    async def __call__(self, message: types.ServerNotification | Exception) -> None:
        """Record one incoming message (called by ``ClientSession``)."""
        self.items.append(message)
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def matching(self, predicate: Callable[[Any], bool]) -> list[Any]:
        """Every recorded message for which ``predicate`` holds."""
        return [item for item in self.items if predicate(item)]

    async def wait_for(
        self, predicate: Callable[[Any], bool], count: int = 1, timeout: float = EVENT_TIMEOUT
    ) -> list[Any]:
        """Wait until ``count`` recorded messages satisfy ``predicate``; return them."""
        with anyio.fail_after(timeout):
            while len(found := self.matching(predicate)) < count:
                await self._changed.wait()
        return found

    async def wait_for_type(self, kind: type[T], count: int = 1) -> list[T]:
        """Wait until ``count`` notifications of type ``kind`` arrived."""
        return await self.wait_for(lambda item: isinstance(item, kind), count)


@dataclass
class Gateway:
    """One gateway configuration, ready to be started with :meth:`connect`."""

    home: Path
    config: Path | None
    log: Path
    initialize_result: types.InitializeResult | None = field(default=None, init=False)

    def command_args(self, *command: str) -> list[str]:
        """Arguments for ``python`` to run ``vmcp [--config C] <command...>``."""
        config = ["--config", str(self.config)] if self.config is not None else []
        return ["-m", "vmcp", *config, *command]

    def env(self) -> dict[str, str]:
        """Environment additions for the gateway process."""
        return {"VMCP_HOME": str(self.home)}

    def server_parameters(self) -> StdioServerParameters:
        """How ``stdio_client`` starts ``vmcp start``."""
        return StdioServerParameters(
            command=sys.executable, args=self.command_args("start"), env=self.env()
        )

    @asynccontextmanager
    async def connect(
        self, *, initialize: bool = True, **session_args: Any
    ) -> AsyncIterator[ClientSession]:
        """Start the gateway and yield a connected (by default initialized) ``ClientSession``.

        ``session_args`` go to ``ClientSession`` (callbacks, ``message_handler``...).
        """
        with self.log.open("a", encoding="utf-8") as errlog, unwrap_single_errors():
            async with (
                stdio_client(self.server_parameters(), errlog=errlog) as (read, write),
                ClientSession(read, write, **session_args) as session,
            ):
                if initialize:
                    with anyio.fail_after(CONNECT_TIMEOUT):
                        self.initialize_result = await session.initialize()
                yield session

    def log_text(self) -> str:
        """What the gateway wrote to stderr so far."""
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


async def collect_pages(
    fetch: Callable[[str | None], Any], items_of: Callable[[Any], list[T]]
) -> list[list[T]]:
    """Call ``fetch(cursor)`` until there is no ``nextCursor``; return the items page by page."""
    pages: list[list[T]] = []
    cursor: str | None = None
    with anyio.fail_after(EVENT_TIMEOUT):
        while True:
            result = await fetch(cursor)
            pages.append(items_of(result))
            cursor = result.next_cursor
            if cursor is None:
                return pages
            assert len(pages) < 1000, "pagination does not end"


def cursor_params(cursor: str | None) -> types.PaginatedRequestParams | None:
    """``PaginatedRequestParams`` for a cursor, or ``None`` for the first page."""
    return None if cursor is None else types.PaginatedRequestParams(cursor=cursor)


async def all_tools(session: ClientSession) -> list[types.Tool]:
    """Every tool, following pagination."""
    pages = await collect_pages(
        lambda c: session.list_tools(params=cursor_params(c)), lambda r: r.tools
    )
    return [tool for page in pages for tool in page]


async def all_prompts(session: ClientSession) -> list[types.Prompt]:
    """Every prompt, following pagination."""
    pages = await collect_pages(
        lambda c: session.list_prompts(params=cursor_params(c)), lambda r: r.prompts
    )
    return [prompt for page in pages for prompt in page]


async def all_resources(session: ClientSession) -> list[types.Resource]:
    """Every resource, following pagination."""
    pages = await collect_pages(
        lambda c: session.list_resources(params=cursor_params(c)), lambda r: r.resources
    )
    return [resource for page in pages for resource in page]


async def all_templates(session: ClientSession) -> list[types.ResourceTemplate]:
    """Every resource template, following pagination."""
    pages = await collect_pages(
        lambda c: session.list_resource_templates(params=cursor_params(c)),
        lambda r: r.resource_templates,
    )
    return [template for page in pages for template in page]


def texts(result: types.CallToolResult | types.GetPromptResult) -> list[str]:
    """The text of every text content block of a tool result or prompt."""
    if isinstance(result, types.GetPromptResult):
        blocks = [message.content for message in result.messages]
    else:
        blocks = list(result.content)
    return [block.text for block in blocks if isinstance(block, types.TextContent)]


@asynccontextmanager
async def direct(script: Path, **session_args: Any) -> AsyncIterator[ClientSession]:
    """Connect straight to a fixture server (no gateway), initialized."""
    params = StdioServerParameters(command=sys.executable, args=[str(script)])
    with unwrap_single_errors():
        async with (
            stdio_client(params) as (read, write),
            ClientSession(read, write, **session_args) as session,
        ):
            with anyio.fail_after(CONNECT_TIMEOUT):
                await session.initialize()
            yield session


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


@asynccontextmanager
async def raw_gateway(gateway: Gateway) -> AsyncIterator[RawClient]:
    """Start ``vmcp start`` with plain pipes; yield a :class:`RawClient`; end the process.

    Fails the test if the gateway does not exit once its stdin is closed.
    """
    with gateway.log.open("a") as errlog:
        process = await anyio.open_process(
            [sys.executable, *gateway.command_args("start")],
            env={**get_default_environment(), **gateway.env()},
            stderr=errlog,
        )
        async with process:
            try:
                yield RawClient(process)
            finally:
                assert process.stdin is not None
                await process.stdin.aclose()
                with anyio.move_on_after(EVENT_TIMEOUT):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                    raise AssertionError("vmcp start did not exit when its stdin closed")


async def raw_initialize(
    client: RawClient, capabilities: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The handshake by hand: ``initialize`` (id ``"init"``) then ``notifications/initialized``."""
    await client.send(
        {
            "jsonrpc": "2.0",
            "id": "init",
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": capabilities or {},
                "clientInfo": {"name": "raw-test", "version": "0"},
            },
        }
    )
    result = await client.receive_response("init")
    await client.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    return result
