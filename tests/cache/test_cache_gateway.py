"""The cache in a running gateway (``memory`` driver), observed through the counting backend."""

from __future__ import annotations

from pathlib import Path

import anyio
import mcp.types as types
import pytest
from cache_harness import (
    EVENT_TIMEOUT,
    Notifications,
    call_text,
    counting_mount,
    counts,
    gateway,
    read_text,
    write_config,
)

from vmcp.config import ConfigError, load_config

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

CACHEABLE = {"cache_tools": ["lookup", "fail"], "cache_resources": ["count://a"]}


def topic(session_value: str) -> tuple[types.PromptReference, dict[str, str]]:
    """The completion request for the ``topic`` prompt's ``name`` argument."""
    return (types.PromptReference(type="ref/prompt", name="counting__topic"),
            {"name": "name", "value": session_value})


async def test_hits_and_misses(tmp_path: Path) -> None:
    config = write_config(tmp_path / "vmcp.toml", {"counting": counting_mount(**CACHEABLE)},
                          {"backend": "memory"})
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with gateway(config, tmp_path / "home", tmp_path / "gateway.log") as session:
        with anyio.fail_after(EVENT_TIMEOUT):
            assert await call_text(session, "counting__lookup", key="k") == "k #1"
            assert await call_text(session, "counting__lookup", key="k") == "k #1"
            assert await call_text(session, "counting__lookup", key="j") == "j #2"
            # a request carrying a progress token goes to the backend, and is not stored
            tracked = await session.call_tool("counting__lookup", {"key": "k"},
                                              progress_callback=on_progress)
            assert tracked.content[0].text == "k #3"  # type: ignore[union-attr]
            assert await call_text(session, "counting__lookup", key="k") == "k #1"
            # isError results are never stored
            assert await call_text(session, "counting__fail") == "failed #1"
            assert await call_text(session, "counting__fail") == "failed #2"
            # reads: count://a is cacheable, count://b is not
            assert await read_text(session, "count://a") == "count://a #1"
            assert await read_text(session, "count://a") == "count://a #1"
            assert await read_text(session, "count://b") == "count://b #1"
            assert await read_text(session, "count://b") == "count://b #2"
            # completions are cached
            for _ in range(2):
                completed = await session.complete(*topic("g"))
                assert completed.completion.values == ["gamma"]
            seen = await counts(session)
    assert seen["tools/call:lookup"] == 3
    assert seen["tools/call:fail"] == 2
    assert seen["resources/read:count://a"] == 1
    assert seen["resources/read:count://b"] == 2
    assert seen["completion/complete"] == 1
    assert seen["tools/list"] == 1  # read once when the mount started


async def test_list_changed_and_resource_updates_invalidate(tmp_path: Path) -> None:
    config = write_config(tmp_path / "vmcp.toml", {"counting": counting_mount(**CACHEABLE)},
                          {"backend": "memory"})
    notes = Notifications()
    async with gateway(config, tmp_path / "home", tmp_path / "gateway.log",
                       message_handler=notes) as session:
        with anyio.fail_after(EVENT_TIMEOUT):
            assert await call_text(session, "counting__lookup", key="k") == "k #1"
            assert await call_text(session, "counting__lookup", key="k") == "k #1"
            await call_text(session, "counting__add_tool", name="extra")
            await notes.wait_for(types.ToolListChangedNotification)
            names = [tool.name for tool in (await session.list_tools()).tools]
            assert "counting__extra" in names
            # a change of the tools list drops the cached tool results too
            assert await call_text(session, "counting__lookup", key="k") == "k #2"

            await session.subscribe_resource("count://a")
            assert await read_text(session, "count://a") == "count://a #1"
            assert await read_text(session, "count://a") == "count://a #1"
            await call_text(session, "counting__touch", uri="count://a")
            await notes.wait_for(types.ResourceUpdatedNotification)
            assert await read_text(session, "count://a") == "count://a #2"
            assert await read_text(session, "count://a") == "count://a #2"
            seen = await counts(session)
    assert seen["tools/list"] == 2


async def test_without_a_cache_nothing_is_kept(tmp_path: Path) -> None:
    config = write_config(tmp_path / "vmcp.toml", {"counting": counting_mount(**CACHEABLE)},
                          {"enabled": False})
    async with gateway(config, tmp_path / "home", tmp_path / "gateway.log") as session:
        with anyio.fail_after(EVENT_TIMEOUT):
            assert await call_text(session, "counting__lookup", key="k") == "k #1"
            assert await call_text(session, "counting__lookup", key="k") == "k #2"


def test_a_missing_driver_is_refused_when_the_configuration_is_read(tmp_path: Path) -> None:
    config = write_config(tmp_path / "vmcp.toml", {"counting": counting_mount(**CACHEABLE)},
                          {"backend": "rediss"})
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    assert refused.value.source == str(config)
    [problem] = refused.value.problems
    assert problem.startswith("line ") and "cache.backend: no cache driver 'rediss'" in problem
    assert "did you mean 'redis'?" in problem
