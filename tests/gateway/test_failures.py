"""Backends that die or hang never hang the client."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import mcp.types as types
import pytest
from gateway_harness import (
    ALPHA,
    BETA,
    EVENT_TIMEOUT,
    Gateway,
    Notifications,
    all_tools,
    backend,
    texts,
)
from mcp.shared.exceptions import MCPError

pytestmark = pytest.mark.anyio


async def test_backend_killed_mid_call(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """The call in flight fails at once (-32000); alpha's tools leave the list (list_changed).

    Restarts are off here; ``test_routing`` covers a dead backend coming back.
    """
    notes = Notifications()
    gateway = make_gateway({**two_backends, "alpha": backend(ALPHA, restart={"enabled": False})})
    async with gateway.connect(message_handler=notes) as session:
        assert "alpha__crash" in [tool.name for tool in await all_tools(session)]
        with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as caught:
            await session.call_tool("alpha__crash", {})
        assert caught.value.code == -32000

        await notes.wait_for_type(types.ToolListChangedNotification)
        tools = [tool.name for tool in await all_tools(session)]
        assert not [name for name in tools if name.startswith("alpha__")]
        assert "beta__echo" in tools

        # The other mount is untouched; the dead one's names are now unknown.
        assert texts(await session.call_tool("beta__echo", {"text": "ok"})) == ["beta: ok"]
        with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as unknown:
            await session.call_tool("alpha__echo", {"text": "x"})
        assert unknown.value.code == -32602


async def test_backend_killed_while_other_calls_wait(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """Every request in flight to the dead backend fails, not only the one that killed it."""
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        started = anyio.Event()
        errors: list[int] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            started.set()

        async def call_block() -> None:
            try:
                await session.call_tool("alpha__block", {}, progress_callback=on_progress)
            except MCPError as exc:
                errors.append(exc.code)

        with anyio.fail_after(EVENT_TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call_block)
                await started.wait()
                with pytest.raises(MCPError):
                    await session.call_tool("alpha__crash", {})
        assert errors == [-32000]


async def test_backend_that_never_answers_times_out(make_gateway: Callable[..., Gateway]) -> None:
    """A hung call gets -32001 after the mount's ``timeout``; the backend is told to cancel."""
    gateway = make_gateway({"slow": backend(ALPHA, timeout=1.0), "beta": backend(BETA)})
    async with gateway.connect() as session:
        started = time.monotonic()
        with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as caught:
            await session.call_tool("slow__hang", {})
        elapsed = time.monotonic() - started
        assert caught.value.code == -32001
        assert 0.9 <= elapsed < EVENT_TIMEOUT
        # notifications/cancelled reached the backend when the gateway gave up.
        result = await session.call_tool("slow__was_cancelled", {"tool": "hang", "timeout": 5})
        assert texts(result) == ["cancelled"]
        # The mount is still usable, and so is the other one.
        assert texts(await session.call_tool("slow__echo", {"text": "after"})) == ["alpha: after"]
        assert texts(await session.call_tool("beta__whoami", {})) == ["beta"]


async def test_hung_call_does_not_block_other_calls(make_gateway: Callable[..., Gateway]) -> None:
    # A longer timeout than above, so the other calls surely finish while the hang is pending.
    gateway = make_gateway({"slow": backend(ALPHA, timeout=3.0), "beta": backend(BETA)})
    async with gateway.connect() as session:
        codes: list[int] = []

        async def call_hang() -> None:
            try:
                await session.call_tool("slow__hang", {})
            except MCPError as exc:
                codes.append(exc.code)

        with anyio.fail_after(EVENT_TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call_hang)
                # While the hang is pending, other requests are answered.
                assert texts(await session.call_tool("beta__echo", {"text": "x"})) == ["beta: x"]
                assert texts(await session.call_tool("slow__echo", {"text": "y"})) == ["alpha: y"]
                assert not codes
        assert codes == [-32001]
