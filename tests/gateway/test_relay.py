"""Results and backend-initiated traffic relayed through the gateway.

Structured output, ``isError`` and ``_meta`` untouched; progress, cancellation, logging levels,
sampling, elicitation (form and URL), roots, ``list_changed`` and completion.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import mcp.types as types
import pytest
from gateway_harness import (
    EVENT_TIMEOUT,
    Gateway,
    Notifications,
    all_prompts,
    all_resources,
    all_tools,
    raw_gateway,
    raw_initialize,
    texts,
)
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]


async def test_structured_content_and_output_schema_pass_through(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        tools = {tool.name: tool for tool in await all_tools(session)}
        assert tools["alpha__add"].output_schema == {
            "type": "object",
            "properties": {"sum": {"type": "number"}},
            "required": ["sum"],
        }
        result = await session.call_tool("alpha__add", {"a": 2, "b": 3})
        assert result.structured_content == {"sum": 5}
        assert not result.is_error
        assert json.loads(texts(result)[0]) == {"sum": 5}


async def test_is_error_passes_through(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        result = await session.call_tool("alpha__fail", {})
        assert result.is_error
        assert texts(result) == ["alpha failed on purpose"]


async def test_meta_passes_through(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        result = await session.call_tool("alpha__with_meta", {})
        assert result.meta == {"com.example/trace": "alpha-123", "note": "kept"}
        assert texts(result) == ["has meta"]


async def test_progress_reaches_the_callback(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        seen: list[tuple[float, float | None, str | None]] = []
        last = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))
            if progress == 4:
                last.set()

        result = await session.call_tool("alpha__slow", {"steps": 4}, progress_callback=on_progress)
        assert texts(result) == ["slow done after 4 steps"]
        with anyio.fail_after(EVENT_TIMEOUT):
            await last.wait()
        assert sorted(seen) == [(i, 4, f"step {i}") for i in range(1, 5)]


async def test_cancellation_reaches_the_backend(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        started = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            started.set()  # the backend is inside the tool now

        async def call_block() -> None:
            await session.call_tool("alpha__block", {}, progress_callback=on_progress)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call_block)
            with anyio.fail_after(EVENT_TIMEOUT):
                await started.wait()
            tg.cancel_scope.cancel()  # the SDK sends notifications/cancelled for the call

        result = await session.call_tool("alpha__was_cancelled", {"tool": "block", "timeout": 5})
        assert texts(result) == ["cancelled"]
        assert texts(await session.call_tool("alpha__echo", {"text": "still here"})) == [
            "alpha: still here"
        ]


async def test_cancelled_notification_sent_by_hand(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """``notifications/cancelled`` naming the front request id reaches the backend's request."""
    gateway = make_gateway(two_backends)
    async with raw_gateway(gateway) as client:
        await raw_initialize(client)
        await client.send(
            {
                "jsonrpc": "2.0",
                "id": "blocker",
                "method": "tools/call",
                "params": {
                    "name": "alpha__block",
                    "arguments": {},
                    "_meta": {"progressToken": "tok"},
                },
            }
        )
        progress = await client.receive()  # the backend is inside the tool now
        assert progress["method"] == "notifications/progress"
        assert progress["params"]["progressToken"] == "tok"
        await client.send(
            {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": "blocker", "reason": "test"},
            }
        )
        await client.send(
            {
                "jsonrpc": "2.0",
                "id": "check",
                "method": "tools/call",
                "params": {
                    "name": "alpha__was_cancelled",
                    "arguments": {"tool": "block", "timeout": 5},
                },
            }
        )
        check = await client.receive_response("check")
        assert check["result"]["content"][0]["text"] == "cancelled"


async def test_logging_level_filters_per_client(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    logs: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        if isinstance(params.data, str) and params.data.startswith("alpha "):
            logs.append(params)  # only alpha's entries; the gateway may log on its own too

    def critical(item: Any) -> bool:
        return (
            isinstance(item, types.LoggingMessageNotification) and item.params.level == "critical"
        )

    notes = Notifications()
    gateway = make_gateway(two_backends)
    async with gateway.connect(logging_callback=on_log, message_handler=notes) as session:
        await session.set_logging_level("warning")
        await session.call_tool("alpha__log_levels", {})
        await notes.wait_for(critical)
        assert [entry.level for entry in logs] == ["warning", "error", "critical"]
        assert [entry.data for entry in logs] == ["alpha warning", "alpha error", "alpha critical"]

        logs.clear()
        await session.set_logging_level("debug")
        await session.call_tool("alpha__log_levels", {})
        await notes.wait_for(critical, count=2)
        assert [entry.level for entry in logs] == [
            "debug",
            "info",
            "notice",
            "warning",
            "error",
            "critical",
        ]

        logs.clear()
        await session.set_logging_level("error")
        await session.call_tool("alpha__log_levels", {})
        await notes.wait_for(critical, count=3)
        assert [entry.level for entry in logs] == ["error", "critical"]


async def test_sampling_is_relayed(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    requests: list[types.CreateMessageRequestParams] = []

    async def sampling(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        requests.append(params)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="42"), model="test-model"
        )

    gateway = make_gateway(two_backends)
    async with gateway.connect(sampling_callback=sampling) as session:
        result = await session.call_tool("alpha__sample", {"prompt": "meaning of life?"})
        assert texts(result) == ["sampled: 42 (test-model)"]
        assert len(requests) == 1
        assert requests[0].max_tokens == 64
        content = requests[0].messages[0].content
        assert isinstance(content, types.TextContent) and content.text == "meaning of life?"


async def test_sampling_refused_when_client_cannot_sample(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """A client without the sampling capability: the backend gets an error, the call ends."""
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        with anyio.fail_after(EVENT_TIMEOUT):
            try:
                result = await session.call_tool("alpha__sample", {"prompt": "x"})
            except MCPError:
                pass
            else:
                assert result.is_error


async def test_form_elicitation_is_relayed(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    asked: list[types.ElicitRequestParams] = []

    async def elicitation(
        context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        asked.append(params)
        return types.ElicitResult(action="accept", content={"name": "Ada", "age": 36})

    gateway = make_gateway(two_backends)
    async with gateway.connect(elicitation_callback=elicitation) as session:
        result = await session.call_tool("alpha__elicit_form", {})
        assert result.structured_content == {
            "action": "accept",
            "content": {"name": "Ada", "age": 36},
        }
        assert len(asked) == 1
        form = asked[0]
        assert isinstance(form, types.ElicitRequestFormParams)
        assert form.message == "Who are you?"
        assert form.requested_schema["required"] == ["name"]


async def test_url_elicitation_and_completion_notification(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    asked: list[types.ElicitRequestURLParams] = []

    async def elicitation(
        context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams)
        asked.append(params)
        return types.ElicitResult(action="accept")

    notes = Notifications()
    gateway = make_gateway(two_backends)
    async with gateway.connect(elicitation_callback=elicitation, message_handler=notes) as session:
        result = await session.call_tool("alpha__elicit_url", {})
        assert texts(result) == ["url elicitation: accept"]
        assert len(asked) == 1
        assert asked[0].url == "https://example.com/login?session=1"
        assert asked[0].message == "Please sign in"
        (complete,) = await notes.wait_for_type(types.ElicitCompleteNotification)
        # The id may be remapped by the gateway, but it must match the request the client saw.
        assert complete.params.elicitation_id == asked[0].elicitation_id


async def test_roots_are_relayed(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    async def roots(context: ClientRequestContext) -> types.ListRootsResult:
        return types.ListRootsResult(
            roots=[
                types.Root(uri="file:///tmp/project", name="project"),
                types.Root(uri="file:///tmp/other"),
            ]
        )

    gateway = make_gateway(two_backends)
    async with gateway.connect(list_roots_callback=roots) as session:
        result = await session.call_tool("alpha__roots", {})
        assert result.structured_content == {"roots": ["file:///tmp/project", "file:///tmp/other"]}


async def test_tools_list_changed_is_forwarded(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    notes = Notifications()
    gateway = make_gateway(two_backends)
    async with gateway.connect(message_handler=notes) as session:
        before = [tool.name for tool in await all_tools(session)]
        assert "alpha__fresh" not in before
        await session.call_tool("alpha__add_tool", {"name": "fresh"})
        await notes.wait_for_type(types.ToolListChangedNotification)
        after = [tool.name for tool in await all_tools(session)]
        assert after.index("alpha__fresh") == after.index("alpha__add_resource") + 1
        assert after.index("alpha__fresh") < after.index("beta__echo")
        assert texts(await session.call_tool("alpha__fresh", {})) == ["dynamic fresh"]


async def test_prompts_list_changed_is_forwarded(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    notes = Notifications()
    gateway = make_gateway(two_backends)
    async with gateway.connect(message_handler=notes) as session:
        assert "alpha__limerick" not in [prompt.name for prompt in await all_prompts(session)]
        await session.call_tool("alpha__add_prompt", {"name": "limerick"})
        await notes.wait_for_type(types.PromptListChangedNotification)
        after = [prompt.name for prompt in await all_prompts(session)]
        assert after.index("alpha__limerick") == after.index("alpha__haiku") + 1
        prompt = await session.get_prompt("alpha__limerick", {})
        assert texts(prompt) == ["alpha prompt limerick {}"]


async def test_resources_list_changed_is_forwarded(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    notes = Notifications()
    gateway = make_gateway(two_backends)
    async with gateway.connect(message_handler=notes) as session:
        assert "alpha://extra/new" not in [str(r.uri) for r in await all_resources(session)]
        await session.call_tool("alpha__add_resource", {"name": "new"})
        await notes.wait_for_type(types.ResourceListChangedNotification)
        after = [str(r.uri) for r in await all_resources(session)]
        assert after.index("alpha://extra/new") < after.index("beta://info")
        read = await session.read_resource("alpha://extra/new")
        assert isinstance(read.contents[0], types.TextResourceContents)
        assert read.contents[0].text == "alpha extra new"


async def test_completion_is_routed_by_prompt_name(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with gateway.connect() as session:
        alpha = await session.complete(
            types.PromptReference(type="ref/prompt", name="alpha__review"),
            {"name": "language", "value": "p"},
        )
        assert alpha.completion.values == ["perl", "php", "python"]
        beta = await session.complete(
            types.PromptReference(type="ref/prompt", name="beta__review"),
            {"name": "language", "value": "j"},
        )
        assert beta.completion.values == ["java", "javascript", "julia"]
        template = await session.complete(
            types.ResourceTemplateReference(type="ref/resource", uri="alpha://items/{id}"),
            {"name": "id", "value": "1"},
        )
        assert template.completion.values == ["1", "10"]
        with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as caught:
            await session.complete(
                types.PromptReference(type="ref/prompt", name="gamma__review"),
                {"name": "language", "value": ""},
            )
        assert caught.value.code == -32602
