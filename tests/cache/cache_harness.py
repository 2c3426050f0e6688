"""Helpers for the cache tests that run real gateways (``vmcp start``) over the counting backend.

Used by ``tests/cache`` and by the ``vmcp-cache-disk`` and ``vmcp-cache-redis`` plugin tests
(their ``conftest.py`` puts this folder on ``sys.path``). A gateway is started as a child
process through the SDK's ``stdio_client``; leaving the context ends it, and it ends its
backends. Waiting is done on notifications received, each wait bounded by ``fail_after``.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
from mcp import ClientSession, StdioServerParameters, stdio_client

from vmcp import tomlwrite

COUNTING = Path(__file__).resolve().parents[1] / "fixtures" / "servers" / "counting.py"
#: seconds allowed for a gateway and its backends to start and answer ``initialize``
CONNECT_TIMEOUT = 30.0
#: seconds allowed for anything awaited after that
EVENT_TIMEOUT = 10.0


def counting_mount(**settings: Any) -> dict[str, Any]:
    """A stdio mount running the counting fixture server."""
    return {"command": sys.executable, "args": [str(COUNTING)], **settings}


def write_config(path: Path, servers: dict[str, dict[str, Any]], cache: dict[str, Any],
                 gateway: dict[str, Any] | None = None) -> Path:
    """Write a ``vmcp.toml`` with ``[cache]``, ``[gateway]`` and ``[servers.<id>]`` tables."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"gateway": gateway or {}, "cache": cache, "servers": servers}
    path.write_text(tomlwrite.dumps(data), encoding="utf-8")
    return path


class Notifications:
    """A ``message_handler`` recording server notifications; tests await the ones they need."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = anyio.Event()

    async def __call__(self, message: Any) -> None:
        """Record one incoming message (called by ``ClientSession``)."""
        self.items.append(message)
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def count(self, kind: type) -> int:
        """How many notifications of type ``kind`` arrived."""
        return sum(1 for item in self.items if isinstance(item, kind))

    async def wait_for(self, kind: type, count: int = 1) -> None:
        """Wait until ``count`` notifications of type ``kind`` arrived."""
        with anyio.fail_after(EVENT_TIMEOUT):
            while self.count(kind) < count:
                await self._changed.wait()


@asynccontextmanager
async def gateway(
    config: Path, home: Path, log: Path, *args: str, **session_args: Any
) -> AsyncIterator[ClientSession]:
    """Run ``vmcp --config <config> start <args>`` and yield an initialized client session."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "vmcp", "--config", str(config), "start", *args],
        env={"VMCP_HOME": str(home)},
    )
    with log.open("a", encoding="utf-8") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, **session_args) as session,
        ):
            with anyio.fail_after(CONNECT_TIMEOUT):
                await session.initialize()
            yield session


async def counts(session: ClientSession, mount: str = "counting") -> Counter[str]:
    """What the counting backend behind ``mount`` answered so far (asked through the gateway)."""
    result = await session.call_tool(f"{mount}__counts", {})
    assert result.structured_content is not None
    return Counter(result.structured_content["counts"])


def logged_counts(path: Path) -> Counter[str]:
    """Counts written to a ``COUNTING_LOG`` file by every counting process that used it."""
    if not path.exists():
        return Counter()
    return Counter(path.read_text(encoding="utf-8").split())


async def call_text(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The text of a tool result (the first content block)."""
    result = await session.call_tool(tool, arguments)
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def read_text(session: ClientSession, uri: str) -> str:
    """The text of a resource read."""
    result = await session.read_resource(uri)
    contents = result.contents[0]
    assert isinstance(contents, types.TextResourceContents)
    return contents.text
