"""Real servers through the gateway: ``mcp-server-time`` from PyPI and the shipped demos."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import mcp.types as types
import pytest
from gateway_harness import (
    ALPHA,
    Gateway,
    Notifications,
    all_prompts,
    all_resources,
    all_tools,
    backend,
    module_backend,
    texts,
)

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]


async def test_time_server_beside_the_fixtures(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway({**two_backends, "time": module_backend("mcp_server_time")})
    async with gateway.connect() as session:
        tools = {tool.name: tool for tool in await all_tools(session)}
        assert "time__get_current_time" in tools
        assert "time__convert_time" in tools
        assert list(tools)[-2:] == ["time__get_current_time", "time__convert_time"]
        assert tools["time__get_current_time"].input_schema["required"] == ["timezone"]

        now = await session.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not now.is_error
        assert json.loads(texts(now)[0])["timezone"] == "UTC"

        converted = await session.call_tool(
            "time__convert_time",
            {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
        )
        assert not converted.is_error
        target = json.loads(texts(converted)[0])["target"]
        assert target["timezone"] == "Asia/Tokyo"
        assert "T21:00:00" in target["datetime"]

        # The fixtures still work beside it.
        assert texts(await session.call_tool("alpha__echo", {"text": "t"})) == ["alpha: t"]


async def test_time_server_with_empty_prefix(make_gateway: Callable[..., Gateway]) -> None:
    """Single-server proxying: the time server's names pass through unchanged."""
    gateway = make_gateway(
        {"time": module_backend("mcp_server_time", prefix=""), "alpha": backend(ALPHA)}
    )
    async with gateway.connect() as session:
        names = [tool.name for tool in await all_tools(session)]
        assert names[:2] == ["get_current_time", "convert_time"]
        now = await session.call_tool("get_current_time", {"timezone": "Europe/Amsterdam"})
        assert json.loads(texts(now)[0])["timezone"] == "Europe/Amsterdam"


async def test_default_configuration_mounts_the_demos(make_gateway: Callable[..., Gateway]) -> None:
    """With an empty ``VMCP_HOME`` and no ``--config``, ``vmcp start`` serves the demo servers."""
    notes = Notifications()
    gateway = make_gateway(None)
    async with gateway.connect(message_handler=notes) as session:
        tools = [tool.name for tool in await all_tools(session)]
        for name in ("toolbox__echo", "toolbox__add", "toolbox__word_count", "toolbox__now_utc"):
            assert name in tools
        assert "notes__add_note" in tools and "notes__delete_note" in tools

        assert texts(await session.call_tool("toolbox__echo", {"text": "hello"})) == ["hello"]
        counted = await session.call_tool("toolbox__word_count", {"text": "one two\nthree"})
        assert counted.structured_content == {"words": 3, "characters": 13, "lines": 2}

        prompts = [prompt.name for prompt in await all_prompts(session)]
        assert "toolbox__summarize" in prompts and "toolbox__translate" in prompts
        completion = await session.complete(
            types.PromptReference(type="ref/prompt", name="toolbox__translate"),
            {"name": "language", "value": "po"},
        )
        assert completion.completion.values == ["Polish", "Portuguese"]

        assert "note://welcome" in [str(r.uri) for r in await all_resources(session)]
        welcome = await session.read_resource("note://welcome")
        assert isinstance(welcome.contents[0], types.TextResourceContents)
        assert "vmcp" in welcome.contents[0].text

        await session.subscribe_resource("note://todo")
        await session.call_tool("notes__add_note", {"name": "todo", "text": "write tests"})
        await notes.wait_for_type(types.ResourceListChangedNotification)
        await notes.wait_for(
            lambda n: (
                isinstance(n, types.ResourceUpdatedNotification)
                and str(n.params.uri) == "note://todo"
            )
        )
        assert "note://todo" in [str(r.uri) for r in await all_resources(session)]
        todo = await session.read_resource("note://todo")
        assert isinstance(todo.contents[0], types.TextResourceContents)
        assert todo.contents[0].text == "write tests"
