"""The shipped demo servers, checked directly with the SDK client (no gateway)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]


@asynccontextmanager
async def demo(module: str, **session_args: Any) -> AsyncIterator[ClientSession]:
    """Run ``python -m <module>`` and yield an initialized session to it."""
    params = StdioServerParameters(command=sys.executable, args=["-m", module])
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, **session_args) as session,
    ):
        with anyio.fail_after(30):
            await session.initialize()
        yield session


def text_of(result: types.CallToolResult) -> str:
    """The first text block of a tool result."""
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def test_toolbox() -> None:
    async with demo("vmcp.demo.toolbox") as session:
        assert session.server_info is not None and session.server_info.name == "vmcp-demo-toolbox"
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == {"echo", "add", "word_count", "now_utc"}
        assert tools["word_count"].output_schema is not None

        assert text_of(await session.call_tool("echo", {"text": "hi"})) == "hi"
        added = await session.call_tool("add", {"a": 1.5, "b": 2})
        assert added.structured_content == {"result": 3.5}
        counted = await session.call_tool("word_count", {"text": "a b c\nd"})
        assert counted.structured_content == {"words": 4, "characters": 7, "lines": 2}
        assert text_of(await session.call_tool("now_utc", {})).endswith("+00:00")

        prompts = {prompt.name: prompt for prompt in (await session.list_prompts()).prompts}
        assert set(prompts) == {"summarize", "translate"}
        assert [arg.name for arg in prompts["translate"].arguments or []] == ["text", "language"]
        rendered = await session.get_prompt("translate", {"text": "hallo", "language": "English"})
        message = rendered.messages[0].content
        assert isinstance(message, types.TextContent) and "English" in message.text

        styles = await session.complete(
            types.PromptReference(type="ref/prompt", name="summarize"),
            {"name": "style", "value": "b"},
        )
        assert styles.completion.values == ["bullet-points", "brief"]
        languages = await session.complete(
            types.PromptReference(type="ref/prompt", name="translate"),
            {"name": "language", "value": "ge"},
        )
        assert languages.completion.values == ["German"]


async def test_notes() -> None:
    changes = anyio.Event()
    updates: list[str] = []
    updated = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceListChangedNotification):
            changes.set()
        elif isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            updated.set()

    async with demo("vmcp.demo.notes", message_handler=on_message) as session:
        caps = session.server_capabilities
        assert caps is not None and caps.resources is not None
        assert caps.resources.subscribe and caps.resources.list_changed

        listed = (await session.list_resources()).resources
        assert [str(r.uri) for r in listed] == ["note://welcome"]
        templates = (await session.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["note://{name}"]

        await session.subscribe_resource("note://shopping")
        added = await session.call_tool("add_note", {"name": "shopping", "text": "milk"})
        assert text_of(added) == "created note://shopping"
        with anyio.fail_after(10):
            await changes.wait()
            await updated.wait()
        assert updates == ["note://shopping"]
        assert [str(r.uri) for r in (await session.list_resources()).resources] == [
            "note://shopping",
            "note://welcome",
        ]
        read = await session.read_resource("note://shopping")
        assert isinstance(read.contents[0], types.TextResourceContents)
        assert read.contents[0].text == "milk"

        await session.unsubscribe_resource("note://shopping")
        await session.call_tool("delete_note", {"name": "shopping"})
        with pytest.raises(MCPError) as caught:
            await session.read_resource("note://shopping")
        assert caught.value.code == -32002
        assert updates == ["note://shopping"]  # unsubscribed: no update for the deletion

        bad = await session.call_tool("add_note", {"name": "no spaces", "text": "x"})
        assert bad.is_error
        missing = await session.call_tool("delete_note", {"name": "ghost"})
        assert missing.is_error
