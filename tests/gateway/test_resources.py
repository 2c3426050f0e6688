"""Resources through the gateway: URI pass-through and disambiguation, reads, subscriptions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import anyio
import mcp.types as types
import pytest
from gateway_harness import (
    EVENT_TIMEOUT,
    FIXTURE_SERVERS,
    Gateway,
    Notifications,
    all_resources,
    backend,
)
from mcp.shared.exceptions import MCPError

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

#: beta's ``shared://readme`` as the gateway exposes it: alpha, mounted first, keeps the plain URI.
UNTEMPLATED = FIXTURE_SERVERS / "untemplated.py"
BETA_README = "vmcp://beta/" + quote("shared://readme", safe="")


async def read_text(session: Any, uri: str) -> tuple[str, str]:
    """Read ``uri``; return the first content's (uri, text)."""
    result = await session.read_resource(uri)
    content = result.contents[0]
    assert isinstance(content, types.TextResourceContents)
    return str(content.uri), content.text


async def test_uris_pass_through_and_shared_uri_is_disambiguated(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        uris = [str(resource.uri) for resource in await all_resources(session)]
        assert "shared://readme" in uris
        assert BETA_README in uris
        assert "beta://info" in uris
        assert "alpha://doc/1" in uris
        assert uris.count("shared://readme") == 1

        assert await read_text(session, "shared://readme") == ("shared://readme", "alpha readme")
        assert await read_text(session, BETA_README) == (BETA_README, "beta readme")
        assert await read_text(session, "beta://info") == ("beta://info", "beta info")
        assert await read_text(session, "alpha://doc/2") == ("alpha://doc/2", "alpha doc 2")


async def test_template_uris_are_routed(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        assert await read_text(session, "alpha://items/7") == ("alpha://items/7", "alpha item 7")
        assert await read_text(session, "alpha://users/ada/profile") == (
            "alpha://users/ada/profile",
            "alpha profile of ada",
        )
        assert await read_text(session, "beta://notes/5") == ("beta://notes/5", "beta note 5")


@pytest.mark.parametrize(
    "uri",
    [
        "nothing://here",
        "alpha://nope",
        "vmcp://gamma/" + quote("shared://readme", safe=""),
    ],
)
async def test_unknown_resource_is_resource_not_found(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]], uri: str
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as caught:
            await session.read_resource(uri)
        assert caught.value.code == -32002


async def test_uris_inside_tool_results_are_mapped(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        alpha = await session.call_tool("alpha__links", {})
        beta = await session.call_tool("beta__links", {})

        def uris(result: types.CallToolResult) -> list[str]:
            found = []
            for block in result.content:
                if isinstance(block, types.ResourceLink):
                    found.append(str(block.uri))
                elif isinstance(block, types.EmbeddedResource):
                    found.append("embedded " + str(block.resource.uri))
            return found

        assert uris(alpha) == ["shared://readme", "alpha://doc/1", "embedded shared://readme"]
        assert uris(beta) == [BETA_README, "beta://info", f"embedded {BETA_README}"]
        embedded = beta.content[2]
        assert isinstance(embedded, types.EmbeddedResource)
        assert isinstance(embedded.resource, types.TextResourceContents)
        assert embedded.resource.text == "beta readme"
        # A link handed out by the gateway can be read back through it.
        link = beta.content[0]
        assert isinstance(link, types.ResourceLink)
        assert await read_text(session, str(link.uri)) == (BETA_README, "beta readme")


def updated_for(uri: str) -> Callable[[Any], bool]:
    """Predicate: a ``notifications/resources/updated`` for ``uri``."""
    return lambda item: (
        isinstance(item, types.ResourceUpdatedNotification) and str(item.params.uri) == uri
    )


async def test_subscribe_update_unsubscribe(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    notes = Notifications()
    gateway = make_gateway(two_backends)
    async with gateway.connect(message_handler=notes) as session:
        await session.subscribe_resource("alpha://counter")
        await session.subscribe_resource(BETA_README)

        touched = await session.call_tool("alpha__touch", {"uri": "alpha://counter"})
        assert touched.structured_content == {"subscribed": True}
        await notes.wait_for(updated_for("alpha://counter"))

        # beta's own URI is shared://readme; the client hears about it under the mapped URI.
        touched = await session.call_tool("beta__touch", {"uri": "shared://readme"})
        assert touched.structured_content == {"subscribed": True}
        await notes.wait_for(updated_for(BETA_README))

        await session.unsubscribe_resource("alpha://counter")
        # The last (only) subscriber left, so the gateway unsubscribed at the backend too.
        touched = await session.call_tool("alpha__touch", {"uri": "alpha://counter"})
        assert touched.structured_content == {"subscribed": False}
        # Barrier: a later update on a still-subscribed URI arrives; none for the unsubscribed one.
        await session.call_tool("beta__touch", {"uri": "shared://readme"})
        await notes.wait_for(updated_for(BETA_README), count=2)
        assert len(notes.matching(updated_for("alpha://counter"))) == 1
        assert not notes.matching(updated_for("shared://readme"))


async def test_updates_only_for_subscribed_uris(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """alpha keeps ``shared://readme``; a subscription to it is not one to beta's copy."""
    notes = Notifications()
    gateway = make_gateway(two_backends)
    async with gateway.connect(message_handler=notes) as session:
        await session.subscribe_resource("shared://readme")
        touched = await session.call_tool("beta__touch", {"uri": "shared://readme"})
        assert touched.structured_content == {"subscribed": False}
        touched = await session.call_tool("alpha__touch", {"uri": "shared://readme"})
        assert touched.structured_content == {"subscribed": True}
        await notes.wait_for(updated_for("shared://readme"))
        assert not notes.matching(updated_for(BETA_README))


async def test_subscribe_to_unknown_resource_fails(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as caught:
            await session.subscribe_resource("nothing://here")
        assert caught.value.code == -32002


async def test_a_backend_without_a_templates_handler_mounts(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway({"plain": backend(UNTEMPLATED)})
    async with gateway.connect() as session:
        with anyio.fail_after(EVENT_TIMEOUT):
            tools = [tool.name for tool in (await session.list_tools()).tools]
            assert tools == ["plain__ping_me"]
            uris = [str(resource.uri) for resource in await all_resources(session)]
            assert uris == ["untemplated://note"]
            templates = await session.list_resource_templates()
            assert templates.resource_templates == []
            assert await read_text(session, "untemplated://note") == (
                "untemplated://note", "a note")
