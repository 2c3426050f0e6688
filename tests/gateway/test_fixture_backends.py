"""The fixture backends, checked directly with the SDK client (no gateway in between).

If one of these fails, the fixture is broken and the gateway tests that use it prove nothing.
"""

from __future__ import annotations

import json

import anyio
import mcp.types as types
import pytest
from gateway_harness import (
    ALPHA,
    ALPHA_TOOLS,
    BETA,
    EVENT_TIMEOUT,
    Notifications,
    all_prompts,
    all_resources,
    all_templates,
    all_tools,
    collect_pages,
    cursor_params,
    direct,
    texts,
)
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]



async def test_alpha_lists_paginate() -> None:
    async with direct(ALPHA) as session:
        pages = await collect_pages(
            lambda c: session.list_tools(params=cursor_params(c)), lambda r: r.tools
        )
        assert [len(page) for page in pages] == [2] * 9 + [1]
        assert [tool.name for page in pages for tool in page] == ALPHA_TOOLS
        assert [p.name for p in await all_prompts(session)] == [
            "greet",
            "review",
            "summary",
            "plan",
            "haiku",
        ]
        assert [str(r.uri) for r in await all_resources(session)] == [
            "shared://readme",
            "alpha://doc/1",
            "alpha://doc/2",
            "alpha://doc/3",
            "alpha://counter",
        ]
        assert [t.uri_template for t in await all_templates(session)] == [
            "alpha://items/{id}",
            "alpha://users/{name}/profile",
            "shared://files/{path}",
        ]
        with pytest.raises(MCPError) as caught:
            await session.list_tools(params=types.PaginatedRequestParams(cursor="bogus"))
        assert caught.value.code == -32602


async def test_alpha_capabilities() -> None:
    async with direct(ALPHA) as session:
        caps = session.server_capabilities
        assert caps is not None
        assert caps.tools is not None and caps.tools.list_changed
        assert caps.resources is not None and caps.resources.subscribe
        assert caps.prompts is not None
        assert caps.logging is not None
        assert caps.completions is not None


async def test_alpha_results() -> None:
    async with direct(ALPHA) as session:
        await all_tools(session)  # lets the client learn the output schemas
        added = await session.call_tool("add", {"a": 2, "b": 3})
        assert added.structured_content == {"sum": 5}
        failed = await session.call_tool("fail", {})
        assert failed.is_error
        meta = await session.call_tool("with_meta", {})
        assert meta.meta == {"com.example/trace": "alpha-123", "note": "kept"}
        links = await session.call_tool("links", {})
        kinds = [(block.type, str(getattr(block, "uri", ""))) for block in links.content]
        assert kinds == [
            ("resource_link", "shared://readme"),
            ("resource_link", "alpha://doc/1"),
            ("resource", ""),
        ]
        embedded = links.content[2]
        assert isinstance(embedded, types.EmbeddedResource)
        assert str(embedded.resource.uri) == "shared://readme"
        read = await session.read_resource("alpha://items/7")
        assert isinstance(read.contents[0], types.TextResourceContents)
        assert read.contents[0].text == "alpha item 7"
        with pytest.raises(MCPError) as caught:
            await session.read_resource("alpha://nothing")
        assert caught.value.code == -32002


async def test_alpha_progress_logging_and_completion() -> None:
    logs: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    notes = Notifications()
    async with direct(ALPHA, logging_callback=on_log, message_handler=notes) as session:
        progress: list[float] = []
        done = anyio.Event()

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)
            if value == 3:
                done.set()

        result = await session.call_tool("slow", {"steps": 3}, progress_callback=on_progress)
        assert texts(result) == ["slow done after 3 steps"]
        with anyio.fail_after(EVENT_TIMEOUT):
            await done.wait()
        assert sorted(progress) == [1, 2, 3]

        await session.set_logging_level("warning")
        await session.call_tool("log_levels", {})
        await notes.wait_for(
            lambda n: (
                isinstance(n, types.LoggingMessageNotification) and n.params.level == "critical"
            )
        )
        assert [entry.level for entry in logs] == ["warning", "error", "critical"]

        completion = await session.complete(
            types.PromptReference(type="ref/prompt", name="review"),
            {"name": "language", "value": "p"},
        )
        assert completion.completion.values == ["perl", "php", "python"]


async def test_alpha_client_requests() -> None:
    seen: dict[str, object] = {}

    async def sampling(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        seen["sampling"] = params
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="42"), model="test-model"
        )

    async def elicitation(
        context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        seen.setdefault("elicitation", []).append(params)  # type: ignore[union-attr]
        if isinstance(params, types.ElicitRequestURLParams):
            return types.ElicitResult(action="accept")
        return types.ElicitResult(action="accept", content={"name": "Ada", "age": 36})

    async def roots(context: ClientRequestContext) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///tmp/project", name="project")])

    notes = Notifications()
    async with direct(
        ALPHA,
        sampling_callback=sampling,
        elicitation_callback=elicitation,
        list_roots_callback=roots,
        message_handler=notes,
    ) as session:
        assert texts(await session.call_tool("sample", {"prompt": "meaning?"})) == [
            "sampled: 42 (test-model)"
        ]
        form = await session.call_tool("elicit_form", {})
        assert form.structured_content == {
            "action": "accept",
            "content": {"name": "Ada", "age": 36},
        }
        url = await session.call_tool("elicit_url", {})
        assert texts(url) == ["url elicitation: accept"]
        await notes.wait_for_type(types.ElicitCompleteNotification)
        listed = await session.call_tool("roots", {})
        assert listed.structured_content == {"roots": ["file:///tmp/project"]}


async def test_alpha_cancellation_and_list_changed() -> None:
    notes = Notifications()
    async with direct(ALPHA, message_handler=notes) as session:
        started = anyio.Event()

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            started.set()

        async with anyio.create_task_group() as tg:

            async def call_block() -> None:
                await session.call_tool("block", {}, progress_callback=on_progress)

            tg.start_soon(call_block)
            with anyio.fail_after(EVENT_TIMEOUT):
                await started.wait()
            tg.cancel_scope.cancel()
        assert texts(await session.call_tool("was_cancelled", {"tool": "block"})) == ["cancelled"]

        await session.call_tool("add_tool", {"name": "fresh"})
        await notes.wait_for_type(types.ToolListChangedNotification)
        assert "fresh" in [tool.name for tool in await all_tools(session)]
        assert texts(await session.call_tool("fresh", {})) == ["dynamic fresh"]


async def test_alpha_subscriptions() -> None:
    notes = Notifications()
    async with direct(ALPHA, message_handler=notes) as session:
        await session.subscribe_resource("alpha://counter")
        touched = await session.call_tool("touch", {"uri": "alpha://counter"})
        assert touched.structured_content == {"subscribed": True}
        await notes.wait_for_type(types.ResourceUpdatedNotification)
        await session.unsubscribe_resource("alpha://counter")
        touched = await session.call_tool("touch", {"uri": "alpha://counter"})
        assert touched.structured_content == {"subscribed": False}


async def test_alpha_crash_ends_the_call() -> None:
    async with direct(ALPHA) as session:
        with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError):
            await session.call_tool("crash", {})


async def test_beta() -> None:
    notes = Notifications()
    async with direct(BETA, message_handler=notes) as session:
        assert [tool.name for tool in await all_tools(session)] == [
            "echo",
            "whoami",
            "links",
            "touch",
        ]
        assert [prompt.name for prompt in await all_prompts(session)] == ["greet", "review"]
        assert [str(r.uri) for r in await all_resources(session)] == [
            "shared://readme",
            "beta://info",
        ]
        assert [t.uri_template for t in await all_templates(session)] == ["beta://notes/{id}"]
        assert texts(await session.call_tool("echo", {"text": "x"})) == ["beta: x"]
        links = await session.call_tool("links", {})
        assert [block.type for block in links.content] == [
            "resource_link",
            "resource_link",
            "resource",
        ]
        read = await session.read_resource("shared://readme")
        assert isinstance(read.contents[0], types.TextResourceContents)
        assert read.contents[0].text == "beta readme"
        completion = await session.complete(
            types.PromptReference(type="ref/prompt", name="review"),
            {"name": "language", "value": "j"},
        )
        assert completion.completion.values == ["java", "javascript", "julia"]
        await session.subscribe_resource("shared://readme")
        touched = await session.call_tool("touch", {"uri": "shared://readme"})
        assert json.loads(texts(touched)[0]) == {"subscribed": True}
        updated = await notes.wait_for_type(types.ResourceUpdatedNotification)
        assert str(updated[0].params.uri) == "shared://readme"
