"""What the model sees: the name budget (aliases) and per-mount overrides, end to end."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
from gateway_harness import (
    ALPHA,
    ALPHA_TOOLS,
    BETA,
    FIXTURE_SERVERS,
    Gateway,
    all_prompts,
    all_tools,
    backend,
    texts,
)
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from vmcp.config import MountConfig, VmcpConfig
from vmcp.gateway.aliases import MODEL_API_NAME_RE, shorten
from vmcp.gateway.gateway import Gateway as VmcpGateway
from vmcp.gateway.namespace import Namespace

pytestmark = pytest.mark.anyio

LONG_PREFIX = "a-very-long-mount-prefix-that-leaves-hardly-any-room-for-names"


async def test_names_over_the_budget_get_aliases_that_route_back(
    make_gateway: Callable[..., Gateway],
) -> None:
    """Every exposed name fits in 64, is unique, and works for calls, prompts and completion."""
    gateway = make_gateway({"alpha": backend(ALPHA, prefix=LONG_PREFIX), "beta": backend(BETA)})
    async with gateway.connect() as session:
        tools = [tool.name for tool in await all_tools(session)]
        prompts = [prompt.name for prompt in await all_prompts(session)]
        for names in (tools, prompts):
            assert len(set(names)) == len(names)
            assert all(MODEL_API_NAME_RE.fullmatch(name) for name in names), names
        expected = [shorten(f"{LONG_PREFIX}__{name}", 64) for name in ALPHA_TOOLS]
        assert tools[: len(ALPHA_TOOLS)] == expected
        assert all(len(f"{LONG_PREFIX}__{tool}") > 64 for tool in ALPHA_TOOLS)
        assert "beta__echo" in tools  # names within the budget are untouched

        echo = shorten(f"{LONG_PREFIX}__echo", 64)
        assert texts(await session.call_tool(echo, {"text": "hi"})) == ["alpha: hi"]
        greet = shorten(f"{LONG_PREFIX}__greet", 64)
        assert texts(await session.get_prompt(greet, {"name": "Ada"})) == [
            'alpha prompt greet {"name": "Ada"}']
        review = shorten(f"{LONG_PREFIX}__review", 64)
        done = await session.complete(types.PromptReference(type="ref/prompt", name=review),
                                      {"name": "language", "value": "p"})
        assert done.completion.values == ["perl", "php", "python"]
        with pytest.raises(MCPError, match="Unknown tool"):
            await session.call_tool(f"{LONG_PREFIX}__echo", {"text": "hi"})


async def test_the_budget_is_configurable(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway({"alpha": backend(ALPHA, prefix="alpha-mount")},
                           {"max_tool_name": 24})
    async with gateway.connect() as session:
        tools = [tool.name for tool in await all_tools(session)]
        assert max(len(name) for name in tools) <= 24
        assert "alpha-mount__echo" in tools
        alias = shorten("alpha-mount__was_cancelled", 24)
        assert alias in tools and alias.startswith("alpha-mount__wa")
        result = await session.call_tool(alias, {"tool": "hang", "timeout": 0})
        assert texts(result) == ["not cancelled"]


def test_overrides_are_checked_when_configured() -> None:
    with pytest.raises(ValidationError, match="annotations need trusted = true"):
        MountConfig(id="m", command="x", tools={"t": {"annotations": {"readOnlyHint": True}}})
    with pytest.raises(ValidationError, match="a name already shown"):
        MountConfig(id="m", command="x", tools={"a": {"name": "c"}, "b": {"name": "c"}})
    with pytest.raises(ValidationError, match="a name already shown"):
        MountConfig(id="m", command="x", prompts={"a": {"name": "b"}, "b": {}})
    with pytest.raises(ValidationError, match="name must be"):
        MountConfig(id="m", command="x", tools={"a": {"name": "no spaces"}})
    MountConfig(id="m", command="x", tools={"a": {"name": "b"}, "b": {"name": "a"}})


def test_aliases_are_deterministic_and_avoid_taken_names() -> None:
    full = "x" * 70
    first = shorten(full, 64)
    assert len(first) == 64 and first == shorten(full, 64)
    second = shorten(full, 64, {first})
    assert second != first and len(second) == 64
    assert shorten("short", 64, {"short"}) == "short"


OVERRIDES: dict[str, Any] = {
    "echo": {"name": "say", "description": "Say it back."},
    "add": {"extend_description": "Integers only."},
    "fail": {"hidden": True},
}


async def test_overrides_rename_describe_and_hide(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway({
        "alpha": backend(ALPHA, tools=OVERRIDES,
                         prompts={"greet": {"name": "hello", "description": "Greets."},
                                  "haiku": {"hidden": True}}),
        "beta": backend(BETA, trusted=True,
                        tools={"echo": {"annotations": {"readOnlyHint": True}}}),
    })
    async with gateway.connect() as session:
        tools = {tool.name: tool for tool in await all_tools(session)}
        assert "alpha__echo" not in tools and "alpha__fail" not in tools
        assert tools["alpha__say"].description == "Say it back."
        assert tools["alpha__add"].description is not None
        assert tools["alpha__add"].description.endswith("\nIntegers only.")
        annotations = tools["beta__echo"].annotations
        assert annotations is not None and annotations.read_only_hint is True
        prompts = {prompt.name: prompt for prompt in await all_prompts(session)}
        assert "alpha__greet" not in prompts and "alpha__haiku" not in prompts
        assert prompts["alpha__hello"].description == "Greets."

        assert texts(await session.call_tool("alpha__say", {"text": "hi"})) == ["alpha: hi"]
        assert texts(await session.get_prompt("alpha__hello", {"name": "Ada"})) == [
            'alpha prompt greet {"name": "Ada"}']
        for hidden in ("alpha__echo", "alpha__fail"):
            with pytest.raises(MCPError, match="Unknown tool"):
                await session.call_tool(hidden, {})
        with pytest.raises(MCPError, match="Unknown prompt"):
            await session.get_prompt("alpha__haiku", {})


async def test_unlisted_tools_reach_only_a_mount_that_forwards_them(
    make_gateway: Callable[..., Gateway],
) -> None:
    """gamma answers ``unlisted``, a tool it lists nowhere: vmcp sends it on only through the
    mount set to forward unlisted tools, and never a name that mount lists but hides or
    renames."""
    gamma = FIXTURE_SERVERS / "gamma.py"
    gateway = make_gateway({
        "fwd": backend(gamma, unlisted_tools="forward",
                       tools={"purge": {"hidden": True}, "store": {"name": "keep"}}),
        "plain": backend(gamma),
    })
    async with gateway.connect() as session:
        names = [tool.name for tool in await all_tools(session)]
        assert "fwd__keep" in names and not any("unlisted" in name for name in names)
        assert texts(await session.call_tool("fwd__unlisted", {})) == ["gamma unlisted"]
        for refused in ("plain__unlisted", "fwd__purge", "fwd__store", "fwd__", "no__unlisted"):
            with pytest.raises(MCPError, match=f"Unknown tool: {refused}"):
                await session.call_tool(refused, {})


def test_an_unlisted_name_two_mounts_could_take_goes_to_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VMCP_HOME", str(tmp_path))
    made = VmcpGateway(VmcpConfig())
    for mount_id, prefix in (("a", ""), ("b", ""), ("c", "c")):
        mount = made._create_mount(MountConfig(
            id=mount_id, command=sys.executable, prefix=prefix, unlisted_tools="forward"))
        mount.catalog["tools"] = [{"name": f"{mount_id}_own", "inputSchema": {}}]
        mount.state = "up"
    namespace = Namespace(made.mounts.values(), "__")
    assert namespace.unlisted_route("c__x") is None  # a, b and c could each take it
    assert namespace.unlisted_route("x") is None
    solo = Namespace([made.mounts["c"]], "__")
    assert solo.unlisted_route("c__x") == ("c", "x")
    assert solo.unlisted_route("c__c_own") is None  # listed, so routed only as listed


def test_forwarding_unlisted_tools_cannot_go_with_enforced_pinning() -> None:
    with pytest.raises(ValidationError, match="no definition to pin"):
        MountConfig(id="m", command="x", unlisted_tools="forward", pinning="enforce")
