"""Names and lists: prefixes, merge order, pagination on both sides, routing errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import mcp.types as types
import pytest
from gateway_harness import (
    ALPHA,
    ALPHA_TOOLS,
    BETA,
    EVENT_TIMEOUT,
    Gateway,
    all_prompts,
    all_resources,
    all_templates,
    all_tools,
    backend,
    collect_pages,
    cursor_params,
    texts,
)
from mcp.shared.exceptions import MCPError

pytestmark = pytest.mark.anyio

BETA_TOOLS = ["echo", "whoami", "links", "touch"]
ALPHA_PROMPTS = ["greet", "review", "summary", "plan", "haiku"]
BETA_PROMPTS = ["greet", "review"]
BETA_README = "vmcp://beta/shared%3A%2F%2Freadme"
RESOURCES = [
    "shared://readme",
    "alpha://doc/1",
    "alpha://doc/2",
    "alpha://doc/3",
    "alpha://counter",
    BETA_README,
    "beta://info",
]
TEMPLATES = [
    "alpha://items/{id}",
    "alpha://users/{name}/profile",
    "shared://files/{path}",
    "beta://notes/{id}",
]


async def test_tools_and_prompts_are_prefixed_and_merged_in_mount_order(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """Alpha's 9 backend pages and beta's single page come out as one list, alpha first."""
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        tools = [tool.name for tool in await all_tools(session)]
        assert tools == [f"alpha__{n}" for n in ALPHA_TOOLS] + [f"beta__{n}" for n in BETA_TOOLS]
        prompts = [prompt.name for prompt in await all_prompts(session)]
        assert prompts == [f"alpha__{n}" for n in ALPHA_PROMPTS] + [
            f"beta__{n}" for n in BETA_PROMPTS
        ]


async def test_same_names_route_by_prefix(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        assert texts(await session.call_tool("alpha__echo", {"text": "hi"})) == ["alpha: hi"]
        assert texts(await session.call_tool("beta__echo", {"text": "hi"})) == ["beta: hi"]
        alpha_greet = await session.get_prompt("alpha__greet", {"name": "Ada"})
        assert texts(alpha_greet) == ['alpha prompt greet {"name": "Ada"}']
        beta_greet = await session.get_prompt("beta__greet", {"name": "Ada"})
        assert texts(beta_greet) == ["beta says hello to Ada"]


async def test_gateway_pagination_is_complete_and_ordered(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """With ``page_size = 3`` every list comes in pages of at most 3 whose union is the whole."""
    gateway = make_gateway(two_backends, {"page_size": 3})
    async with gateway.connect() as session:
        tool_pages = await collect_pages(
            lambda c: session.list_tools(params=cursor_params(c)), lambda r: r.tools
        )
        expected_tools = [f"alpha__{n}" for n in ALPHA_TOOLS] + [f"beta__{n}" for n in BETA_TOOLS]
        assert [len(page) for page in tool_pages] == [3] * 7 + [2]
        assert [tool.name for page in tool_pages for tool in page] == expected_tools

        prompt_pages = await collect_pages(
            lambda c: session.list_prompts(params=cursor_params(c)), lambda r: r.prompts
        )
        assert all(len(page) <= 3 for page in prompt_pages) and len(prompt_pages) == 3
        expected_prompts = [f"alpha__{n}" for n in ALPHA_PROMPTS] + [
            f"beta__{n}" for n in BETA_PROMPTS
        ]
        assert [p.name for page in prompt_pages for p in page] == expected_prompts

        resource_pages = await collect_pages(
            lambda c: session.list_resources(params=cursor_params(c)), lambda r: r.resources
        )
        assert all(len(page) <= 3 for page in resource_pages) and len(resource_pages) == 3
        assert [str(r.uri) for page in resource_pages for r in page] == RESOURCES

        template_pages = await collect_pages(
            lambda c: session.list_resource_templates(params=cursor_params(c)),
            lambda r: r.resource_templates,
        )
        assert all(len(page) <= 3 for page in template_pages) and len(template_pages) == 2
        assert [t.uri_template for page in template_pages for t in page] == TEMPLATES


async def test_default_page_size_gives_one_page(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        result = await session.list_tools()
        assert result.next_cursor is None
        assert len(result.tools) == len(ALPHA_TOOLS) + len(BETA_TOOLS)
        assert [str(r.uri) for r in await all_resources(session)] == RESOURCES
        assert [t.uri_template for t in await all_templates(session)] == TEMPLATES


@pytest.mark.parametrize("cursor", ["not-a-cursor", "", "eyJ4IjogMX0=", "alpha:2"])
async def test_bad_cursor_is_invalid_params(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]], cursor: str
) -> None:
    gateway = make_gateway(two_backends, {"page_size": 3})
    async with gateway.connect() as session:
        params = types.PaginatedRequestParams(cursor=cursor)
        for method in (
            session.list_tools,
            session.list_prompts,
            session.list_resources,
            session.list_resource_templates,
        ):
            with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as caught:
                await method(params=params)
            assert caught.value.code == -32602, method.__name__


async def test_cursor_of_one_list_is_not_valid_for_another(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends, {"page_size": 3})
    async with gateway.connect() as session:
        first = await session.list_resources()
        assert first.next_cursor is not None
        with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as caught:
            await session.list_tools(params=types.PaginatedRequestParams(cursor=first.next_cursor))
        assert caught.value.code == -32602


@pytest.mark.parametrize(
    "name", ["echo", "nosuchmount__echo", "alpha__nosuchtool", "alpha_echo", ""]
)
async def test_unknown_tool_is_invalid_params(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]], name: str
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as caught:
            await session.call_tool(name, {})
        assert caught.value.code == -32602
        assert texts(await session.call_tool("beta__whoami", {})) == ["beta"]


async def test_unknown_prompt_is_invalid_params(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        for name in ("greet", "gamma__greet", "alpha__nosuchprompt"):
            with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as caught:
                await session.get_prompt(name, {})
            assert caught.value.code == -32602, name


async def test_empty_prefix_passes_names_unchanged(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway({"alpha": backend(ALPHA, prefix=""), "beta": backend(BETA)})
    async with gateway.connect() as session:
        tools = [tool.name for tool in await all_tools(session)]
        assert tools == ALPHA_TOOLS + [f"beta__{n}" for n in BETA_TOOLS]
        assert texts(await session.call_tool("echo", {"text": "plain"})) == ["alpha: plain"]
        assert texts(await session.call_tool("beta__echo", {"text": "plain"})) == ["beta: plain"]
        prompts = [prompt.name for prompt in await all_prompts(session)]
        assert prompts == ALPHA_PROMPTS + [f"beta__{n}" for n in BETA_PROMPTS]
        assert texts(await session.get_prompt("greet", {"name": "Bo"})) == [
            'alpha prompt greet {"name": "Bo"}'
        ]


async def test_custom_prefix(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway({"alpha": backend(ALPHA), "beta": backend(BETA, prefix="b2")})
    async with gateway.connect() as session:
        tools = [tool.name for tool in await all_tools(session)]
        assert [f"b2__{n}" for n in BETA_TOOLS] == tools[len(ALPHA_TOOLS) :]
        assert texts(await session.call_tool("b2__whoami", {})) == ["beta"]


async def test_empty_prefix_collision_fails_only_that_mount(
    make_gateway: Callable[..., Gateway],
) -> None:
    """Two unprefixed mounts both have ``echo``: the later mount is refused, the first is served."""
    gateway = make_gateway(
        {
            "alpha": backend(ALPHA, prefix=""),
            "beta": backend(BETA, prefix=""),
            "gamma": backend(BETA),
        }
    )
    async with gateway.connect() as session:
        tools = [tool.name for tool in await all_tools(session)]
        assert tools == ALPHA_TOOLS + [f"gamma__{n}" for n in BETA_TOOLS]
        assert "whoami" not in tools  # beta's own, non-colliding tool went with the mount
        assert texts(await session.call_tool("echo", {"text": "x"})) == ["alpha: x"]
        assert texts(await session.call_tool("gamma__whoami", {})) == ["beta"]
        prompts = [prompt.name for prompt in await all_prompts(session)]
        assert prompts == ALPHA_PROMPTS + [f"gamma__{n}" for n in BETA_PROMPTS]
    assert "beta" in gateway.log_text()
