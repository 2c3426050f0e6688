"""Tool search: the meta-tools in search and auto modes, per gateway and per persona."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
from gateway_harness import (
    ALPHA,
    BETA,
    Gateway,
    Notifications,
    all_tools,
    backend,
    texts,
    write_config,
)
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from test_personas import PersonaGateway, make_personas

from vmcp.persona import PersonaStore

pytestmark = pytest.mark.anyio

META = ["vmcp__search_tools", "vmcp__describe_tools", "vmcp__call_tool"]


async def search(session: ClientSession, query: str, limit: int = 5) -> list[str]:
    """The names ``vmcp__search_tools`` finds, best first."""
    result = await session.call_tool("vmcp__search_tools", {"query": query, "limit": limit})
    assert not result.is_error, texts(result)
    assert result.structured_content is not None
    return [tool["name"] for tool in result.structured_content["tools"]]


async def test_search_mode_shows_meta_tools_that_find_describe_and_call(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends, {"tool_exposure": "search"})
    async with gateway.connect() as session:
        assert [tool.name for tool in await all_tools(session)] == META
        assert (await search(session, "add two numbers"))[0] == "alpha__add"
        assert "alpha__elicit_form" in await search(session, "elicitation form")
        assert await search(session, "zzzunknownword") == []

        described = await session.call_tool("vmcp__describe_tools",
                                            {"names": ["alpha__add", "nope__nothing"]})
        content = described.structured_content
        assert content is not None and content["unknown"] == ["nope__nothing"]
        assert content["tools"][0]["inputSchema"]["required"] == ["a", "b"]
        assert content["tools"][0]["outputSchema"]["required"] == ["sum"]

        called = await session.call_tool("vmcp__call_tool",
                                         {"name": "alpha__echo", "arguments": {"text": "hi"}})
        assert texts(called) == ["alpha: hi"]
        # the real names stay callable
        assert texts(await session.call_tool("beta__echo", {"text": "hi"})) == ["beta: hi"]
        with pytest.raises(MCPError, match="Unknown tool"):
            await session.call_tool("vmcp__call_tool", {"name": "nope__x", "arguments": {}})
        with pytest.raises(MCPError, match="query must be"):
            await session.call_tool("vmcp__search_tools", {"query": ""})


@pytest.mark.parametrize(("threshold", "token_threshold", "searching"), [
    (10, 100_000, True), (100, 100_000, False), (100, 100, True)])
async def test_auto_mode_switches_above_the_thresholds(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]],
    threshold: int, token_threshold: int, searching: bool,
) -> None:
    """23 tools of some hundreds of estimated tokens: above a count or a token threshold."""
    gateway = make_gateway(two_backends,
                           {"tool_exposure": "auto", "search_threshold": threshold,
                            "search_token_threshold": token_threshold})
    async with gateway.connect() as session:
        names = [tool.name for tool in await all_tools(session)]
        assert (names == META) is searching
        assert len(names) == (3 if searching else 23)


async def test_all_mode_has_no_meta_tools(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    async with make_gateway(two_backends).connect() as session:
        assert "vmcp__search_tools" not in {tool.name for tool in await all_tools(session)}
        with pytest.raises(MCPError, match="Unknown tool"):
            await session.call_tool("vmcp__search_tools", {"query": "echo"})


async def test_search_is_filtered_by_persona_and_set_per_persona(tmp_path: Path) -> None:
    """coder (alpha's echo, add, t*) searches; hidden tools are never found or described."""
    home = tmp_path / "home"
    store: PersonaStore = make_personas(home)
    coder = store.load("coder")
    coder.tool_exposure = "search"
    store.save(coder)
    config = write_config(tmp_path / "config" / "vmcp.toml",
                          {"alpha": backend(ALPHA), "beta": backend(BETA)})
    gateway = PersonaGateway(home=home, config=config, log=tmp_path / "gateway.log",
                             persona="coder")
    async with gateway.connect() as session:
        assert [tool.name for tool in await all_tools(session)] == META
        assert await search(session, "echo text back") == ["alpha__echo"]
        assert await search(session, "elicitation form sample roots") == []
        assert set(await search(session, "add echo touch fail links", 50)) == {
            "alpha__echo", "alpha__add", "alpha__touch"}
        described = await session.call_tool("vmcp__describe_tools",
                                            {"names": ["beta__echo", "alpha__fail"]})
        content = described.structured_content
        assert content is not None
        assert content["tools"] == [] and content["unknown"] == ["beta__echo", "alpha__fail"]
        with pytest.raises(MCPError, match="Unknown tool: beta__echo"):
            await session.call_tool("vmcp__call_tool", {"name": "beta__echo",
                                                        "arguments": {"text": "x"}})


async def describe(session: ClientSession, *names: str) -> list[str]:
    """The names ``vmcp__describe_tools`` describes."""
    result = await session.call_tool("vmcp__describe_tools", {"names": list(names)})
    assert result.structured_content is not None
    return [tool["name"] for tool in result.structured_content["tools"]]


def list_changes(notes: Notifications) -> int:
    """How many ``tools/list_changed`` the client was sent."""
    return len(notes.matching(lambda n: isinstance(n, types.ToolListChangedNotification)))


async def test_described_tools_are_promoted_into_the_list(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """With promote_tools = 2 the two latest described tools join the list, announced."""
    gateway = make_gateway(two_backends, {"tool_exposure": "search", "promote_tools": 2})
    notes = Notifications()
    async with gateway.connect(message_handler=notes) as session:
        assert [tool.name for tool in await all_tools(session)] == META
        assert await describe(session, "beta__echo", "alpha__add") == ["alpha__add", "beta__echo"]
        await notes.wait_for_type(types.ToolListChangedNotification)
        listed = await all_tools(session)
        assert [tool.name for tool in listed] == [*META, "alpha__add", "beta__echo"]
        assert listed[3].input_schema["required"] == ["a", "b"]
        assert texts(await session.call_tool("beta__echo", {"text": "hi"})) == ["beta: hi"]

        # The same tools again change nothing; a third one pushes out the oldest.
        await describe(session, "alpha__add")
        await describe(session, "alpha__echo")
        await notes.wait_for_type(types.ToolListChangedNotification, 2)
        assert [tool.name for tool in await all_tools(session)] == [
            *META, "alpha__echo", "alpha__add"]
        assert list_changes(notes) == 2
        # unknown names promote nothing
        assert await describe(session, "nope__nothing") == []
        assert [tool.name for tool in await all_tools(session)][3:] == [
            "alpha__echo", "alpha__add"]
    assert list_changes(notes) == 2


async def test_promotion_keeps_to_the_persona_and_to_search_mode(tmp_path: Path) -> None:
    """coder (alpha's echo, add, t*) cannot promote what it cannot see; in auto mode under
    the threshold describing promotes nothing (every tool is listed anyway)."""
    home = tmp_path / "home"
    make_personas(home)
    config = write_config(tmp_path / "config" / "vmcp.toml",
                          {"alpha": backend(ALPHA), "beta": backend(BETA)},
                          {"tool_exposure": "auto", "search_threshold": 2,
                           "promote_tools": 5})
    gateway = PersonaGateway(home=home, config=config, log=tmp_path / "gateway.log",
                             persona="coder")
    notes = Notifications()
    async with gateway.connect(message_handler=notes) as session:
        assert [tool.name for tool in await all_tools(session)] == META
        assert await describe(session, "beta__echo", "alpha__fail", "alpha__echo") == [
            "alpha__echo"]
        await notes.wait_for_type(types.ToolListChangedNotification)
        assert [tool.name for tool in await all_tools(session)] == [*META, "alpha__echo"]

    config = write_config(tmp_path / "config" / "vmcp.toml",
                          {"alpha": backend(ALPHA), "beta": backend(BETA)},
                          {"tool_exposure": "auto", "promote_tools": 5})
    notes = Notifications()
    async with gateway.connect(message_handler=notes) as session:
        assert await describe(session, "alpha__echo") == ["alpha__echo"]
        names = [tool.name for tool in await all_tools(session)]
        assert "vmcp__search_tools" not in names and names.count("alpha__echo") == 1
    assert list_changes(notes) == 0
