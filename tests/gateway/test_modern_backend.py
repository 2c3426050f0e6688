"""Backends of the 2026-07-28 era behind the gateway, reached by a handshake-era front client.

The backend is ``tests/fixtures/servers/modern.py``, which refuses ``initialize``: with the
gateway's old handshake-only back side none of this could mount. ``tasker.py`` speaks the
handshake era only (it answers ``server/discover`` with -32601).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mcp.types as types
import pytest
from gateway_harness import (
    FIXTURE_SERVERS,
    Gateway,
    Notifications,
    all_tools,
    backend,
    raw_gateway,
    texts,
)

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

MODERN = FIXTURE_SERVERS / "modern.py"
TASKER = FIXTURE_SERVERS / "tasker.py"


def _modern_gateway(make_gateway: Callable[..., Gateway], era: str) -> Gateway:
    return make_gateway({"m": backend(MODERN, era=era)})


@pytest.mark.parametrize("era", ["modern", "auto"])
async def test_legacy_client_uses_a_modern_only_backend(
    make_gateway: Callable[..., Gateway], era: str
) -> None:
    async with _modern_gateway(make_gateway, era).connect() as session:
        names = [tool.name for tool in await all_tools(session)]
        assert names[:4] == ["m__echo", "m__region", "m__envelope", "m__ask"]
        assert texts(await session.call_tool("m__echo", {"text": "hi"})) == ["modern: hi"]
        resources = await session.list_resources()
        assert {str(r.uri) for r in resources.resources} == {
            "modern://doc", "modern://zero", "modern://private"}
        read = await session.read_resource("modern://doc")
        assert read.contents[0].text == "modern://doc read 1"  # type: ignore[union-attr]
        prompts = await session.list_prompts()
        assert [p.name for p in prompts.prompts] == ["m__greet"]
        prompt = await session.get_prompt("m__greet", {"name": "Ada"})
        assert texts(prompt) == ["Hello, Ada!"]


async def test_every_request_carries_the_modern_envelope(
    make_gateway: Callable[..., Gateway]
) -> None:
    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    gateway = _modern_gateway(make_gateway, "modern")
    async with gateway.connect(elicitation_callback=elicit) as session:
        result = await session.call_tool("m__envelope", {})
    envelope = result.structured_content
    assert envelope is not None
    assert envelope["protocolVersion"] == "2026-07-28"
    assert envelope["clientInfo"]["name"] == "vmcp"
    # the capabilities of the client whose request it is (it can answer an elicitation,
    # not a sampling request), so the backend asks only for what that client can give
    assert "elicitation" in envelope["clientCapabilities"]
    assert "sampling" not in envelope["clientCapabilities"]


async def test_input_required_of_a_modern_backend_is_asked_of_a_handshake_client(
    make_gateway: Callable[..., Gateway]
) -> None:
    """A 2026-07-28 backend's ``input_required`` becomes an ``elicitation/create`` request on
    the handshake-era client's session; its answer goes back as the retry (with the
    backend's untouched ``requestState``), and the client gets the final result only."""
    asked: list[str] = []

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    gateway = _modern_gateway(make_gateway, "modern")
    async with gateway.connect(elicitation_callback=elicit) as session:
        result = await session.call_tool("m__ask", {})
    assert asked == ["What is your name?"]
    assert texts(result) == ["hello Ada"]


async def test_input_required_for_a_client_that_cannot_answer_is_an_error(
    make_gateway: Callable[..., Gateway]
) -> None:
    """A handshake client without elicitation is never asked: the call fails clearly."""
    async with raw_gateway(_modern_gateway(make_gateway, "modern")) as client:
        await client.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}})
        await client.receive_response(1)
        await client.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await client.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                           "params": {"name": "m__ask", "arguments": {}}})
        response = await client.receive_response(2)
    assert response["error"]["code"] == -32601
    assert "elicitation" in response["error"]["message"]


async def test_auto_picks_modern_for_a_modern_only_backend_and_legacy_for_a_handshake_only_one(
    make_gateway: Callable[..., Gateway]
) -> None:
    gateway = make_gateway({"m": backend(MODERN, era="auto"), "t": backend(TASKER, era="auto")})
    async with gateway.connect() as session:
        names = {tool.name for tool in await all_tools(session)}
        assert {"m__echo", "t__work"} <= names
        assert texts(await session.call_tool("m__echo", {"text": "x"})) == ["modern: x"]
    log = gateway.log_text()
    assert "mount m: the backend speaks the modern era" in log
    assert "mount t: the backend speaks the legacy era" in log


async def test_the_shipped_default_era_is_legacy(make_gateway: Callable[..., Gateway]) -> None:
    """Without ``era``, the shipped ``[gateway] backend_era = "legacy"`` applies: the
    modern-only backend refuses ``initialize`` and does not mount."""
    gateway = make_gateway({"m": backend(MODERN), "t": backend(TASKER)})
    async with gateway.connect() as session:
        names = {tool.name for tool in await all_tools(session)}
    assert "t__work" in names
    assert not any(name.startswith("m__") for name in names)


def _changed(item: Any) -> bool:
    return isinstance(item, types.ToolListChangedNotification)


def _updated(uri: str) -> Callable[[Any], bool]:
    return lambda item: (isinstance(item, types.ResourceUpdatedNotification)
                         and str(item.params.uri) == uri)


async def test_list_changed_from_a_modern_backend_reaches_a_legacy_client(
    make_gateway: Callable[..., Gateway]
) -> None:
    notes = Notifications()
    async with _modern_gateway(make_gateway, "modern").connect(message_handler=notes) as session:
        await session.call_tool("m__add_tool", {"name": "later"})
        await notes.wait_for(_changed)
        # the gateway re-read the list before it announced the change
        assert "m__later" in {tool.name for tool in await all_tools(session)}
        assert texts(await session.call_tool("m__later", {})) == ["dynamic later"]


async def test_a_legacy_subscription_to_a_modern_backend_rides_its_listen(
    make_gateway: Callable[..., Gateway]
) -> None:
    notes = Notifications()
    async with _modern_gateway(make_gateway, "modern").connect(message_handler=notes) as session:
        await session.subscribe_resource("modern://doc")
        await session.call_tool("m__touch", {"uri": "modern://doc"})
        await notes.wait_for(_updated("modern://doc"))
        await session.unsubscribe_resource("modern://doc")
        await session.call_tool("m__touch", {"uri": "modern://private"})
        await session.call_tool("m__touch", {"uri": "modern://doc"})
        await session.subscribe_resource("modern://private")
        await session.call_tool("m__touch", {"uri": "modern://private"})
        await notes.wait_for(_updated("modern://private"))
    assert len(notes.matching(_updated("modern://doc"))) == 1
