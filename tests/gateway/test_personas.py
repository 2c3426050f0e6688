"""Personas over stdio: ``vmcp start --persona NAME`` against one configuration.

Two personas on the same gateway configuration (alpha and beta mounted), each through the
official SDK client: each sees exactly its set in every list, can use it, and gets for every
hidden tool, prompt, resource, template, completion ref and subscription exactly the error an
unknown name gets. Then a live change made with the ``vmcp persona`` CLI while a client is
connected: the client receives ``list_changed`` and the new set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from gateway_harness import (
    ALPHA,
    BETA,
    EVENT_TIMEOUT,
    Gateway,
    Notifications,
    all_prompts,
    all_resources,
    all_templates,
    all_tools,
    backend,
    texts,
    write_config,
)
from mcp import StdioServerParameters
from mcp.shared.exceptions import MCPError

from vmcp.gateway.uris import alias
from vmcp.persona import PersonaStore

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

ALPHA_TOOLS = ["echo", "add", "fail", "with_meta", "links", "slow", "log_levels", "sample",
               "elicit_form", "elicit_url", "roots", "block", "hang", "was_cancelled", "crash",
               "add_tool", "touch"]
ALPHA_PROMPTS = ["greet", "review", "summary", "plan", "haiku"]
ALPHA_RESOURCES = ["shared://readme", "alpha://doc/1", "alpha://doc/2", "alpha://doc/3",
                   "alpha://counter"]
ALPHA_TEMPLATES = ["alpha://items/{id}", "alpha://users/{name}/profile", "shared://files/{path}"]
BETA_TOOLS = ["echo", "whoami", "links", "touch"]
BETA_PROMPTS = ["greet", "review"]
BETA_RESOURCES = [alias("beta", "shared://readme"), "beta://info"]
BETA_TEMPLATES = ["beta://notes/{id}"]

EVERY_TOOL = [f"alpha__{t}" for t in ALPHA_TOOLS] + [f"beta__{t}" for t in BETA_TOOLS]
EVERY_PROMPT = [f"alpha__{p}" for p in ALPHA_PROMPTS] + [f"beta__{p}" for p in BETA_PROMPTS]
EVERY_RESOURCE = ALPHA_RESOURCES + BETA_RESOURCES
EVERY_TEMPLATE = ALPHA_TEMPLATES + BETA_TEMPLATES


@dataclass
class Expected:
    """What one persona must see (exposed names and front URIs)."""

    tools: list[str]
    prompts: list[str]
    resources: list[str]
    templates: list[str]
    #: (a visible tool, its arguments, the text it answers)
    call: tuple[str, dict[str, Any], str]
    #: (a visible prompt whose ``language`` argument completes, a prefix, the completions)
    completes: tuple[str, str, list[str]]
    readable: str
    template: str


# coder: alpha only, tools narrowed by an allow list, two prompts denied.
CODER = Expected(
    tools=["alpha__echo", "alpha__add", "alpha__touch"],
    prompts=["alpha__greet", "alpha__review", "alpha__summary"],
    resources=ALPHA_RESOURCES,
    templates=ALPHA_TEMPLATES,
    call=("alpha__echo", {"text": "hi"}, "alpha: hi"),
    completes=("alpha__review", "p", ["perl", "php", "python"]),
    readable="alpha://doc/1",
    template="alpha://items/{id}",
)
# support: beta, everything on it.
SUPPORT = Expected(
    tools=[f"beta__{t}" for t in BETA_TOOLS],
    prompts=[f"beta__{p}" for p in BETA_PROMPTS],
    resources=BETA_RESOURCES,
    templates=BETA_TEMPLATES,
    call=("beta__whoami", {}, "beta"),
    completes=("beta__review", "j", ["java", "javascript", "julia"]),
    readable="beta://info",
    template="beta://notes/{id}",
)


@dataclass
class PersonaGateway(Gateway):
    """The harness gateway, started as ``vmcp start --persona NAME``."""

    persona: str | None = None

    def server_parameters(self) -> StdioServerParameters:
        """``vmcp [--config C] start [--persona P]``."""
        extra = ["--persona", self.persona] if self.persona else []
        return StdioServerParameters(
            command=sys.executable, args=self.command_args("start", *extra), env=self.env())


def make_personas(home: Path) -> PersonaStore:
    """``coder`` and ``support`` as described above, plus ``nobody`` (a new persona)."""
    store = PersonaStore(home / "config" / "personas")
    coder = store.create("coder", "alpha, narrowed")
    coder.enable("alpha")
    for pattern in ("echo", "add", "t*"):
        coder.add_rule("alpha", "allow_tools", pattern)
    for pattern in ("plan", "h*"):
        coder.add_rule("alpha", "deny_prompts", pattern)
    store.save(coder)
    support = store.create("support", "beta")
    support.enable("beta")
    store.save(support)
    store.create("nobody")
    return store


@pytest.fixture
def persona_gateway(tmp_path: Path) -> Any:
    """Factory: ``(persona, gateway_settings)`` -> the alpha+beta configuration, with the
    personas in its ``VMCP_HOME``, started as ``persona``."""
    home = tmp_path / "home"
    make_personas(home)
    made: list[PersonaGateway] = []

    def factory(persona: str | None, settings: dict[str, Any] | None = None) -> PersonaGateway:
        index = len(made)
        config = write_config(tmp_path / f"config{index}" / "vmcp.toml",
                              {"alpha": backend(ALPHA), "beta": backend(BETA)}, settings)
        made.append(PersonaGateway(home=home, config=config,
                                   log=tmp_path / f"gateway{index}.log", persona=persona))
        return made[-1]

    yield factory
    for gateway in made:
        if text := gateway.log_text():
            print(f"--- gateway stderr ({gateway.log.name}) ---\n{text}")


async def error_of(call: Awaitable[Any]) -> types.ErrorData:
    """The JSON-RPC error a request fails with."""
    with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as failed:
        await call
    return failed.value.error


def assert_same_error(hidden: types.ErrorData, hidden_name: str,
                      unknown: types.ErrorData, unknown_name: str) -> None:
    """Both errors are the same once each names its own (hidden or unknown) name."""
    def shape(error: types.ErrorData, name: str) -> tuple[int, str, Any]:
        data = error.data
        if isinstance(data, dict):
            data = {k: ("NAME" if v == name else v) for k, v in data.items()}
        return error.code, error.message.replace(name, "NAME"), data

    assert shape(hidden, hidden_name) == shape(unknown, unknown_name)


@pytest.mark.parametrize(("persona", "expected"), [("coder", CODER), ("support", SUPPORT)])
async def test_persona_sees_and_uses_exactly_its_set(
    persona_gateway: Any, persona: str, expected: Expected
) -> None:
    async with persona_gateway(persona).connect() as session:
        assert [t.name for t in await all_tools(session)] == expected.tools
        assert [p.name for p in await all_prompts(session)] == expected.prompts
        assert [str(r.uri) for r in await all_resources(session)] == expected.resources
        assert [t.uri_template for t in await all_templates(session)] == expected.templates

        # What is visible can be used.
        name, args, answer = expected.call
        assert texts(await session.call_tool(name, args)) == [answer]
        prompt, prefix, values = expected.completes
        assert (await session.get_prompt(prompt, {"code": "x"})).messages
        done = await session.complete(types.PromptReference(type="ref/prompt", name=prompt),
                                      {"name": "language", "value": prefix})
        assert done.completion.values == values
        done = await session.complete(
            types.ResourceTemplateReference(type="ref/resource", uri=expected.template),
            {"name": "id", "value": ""})
        assert isinstance(done.completion.values, list)
        read = await session.read_resource(expected.readable)
        assert str(read.contents[0].uri) == expected.readable
        await session.subscribe_resource(expected.readable)
        await session.unsubscribe_resource(expected.readable)

        # Everything else fails exactly as an unknown name does.
        unknown_tool = await error_of(session.call_tool("nope__nothing", {}))
        for tool in set(EVERY_TOOL) - set(expected.tools):
            hidden = await error_of(session.call_tool(tool, {}))
            assert_same_error(hidden, tool, unknown_tool, "nope__nothing")
        unknown_prompt = await error_of(session.get_prompt("nope__nothing"))
        unknown_ref = await error_of(session.complete(
            types.PromptReference(type="ref/prompt", name="nope__nothing"),
            {"name": "language", "value": ""}))
        for hidden_prompt in set(EVERY_PROMPT) - set(expected.prompts):
            hidden = await error_of(session.get_prompt(hidden_prompt))
            assert_same_error(hidden, hidden_prompt, unknown_prompt, "nope__nothing")
            hidden = await error_of(session.complete(
                types.PromptReference(type="ref/prompt", name=hidden_prompt),
                {"name": "language", "value": ""}))
            assert_same_error(hidden, hidden_prompt, unknown_ref, "nope__nothing")
        unknown_uri = "nope://nothing"
        unknown_read = await error_of(session.read_resource(unknown_uri))
        unknown_subscribe = await error_of(session.subscribe_resource(unknown_uri))
        for uri in set(EVERY_RESOURCE) - set(expected.resources):
            assert_same_error(await error_of(session.read_resource(uri)), uri,
                              unknown_read, unknown_uri)
            assert_same_error(await error_of(session.subscribe_resource(uri)), uri,
                              unknown_subscribe, unknown_uri)
        unknown_template = "nope://{id}"
        unknown_completion = await error_of(session.complete(
            types.ResourceTemplateReference(type="ref/resource", uri=unknown_template),
            {"name": "id", "value": ""}))
        for template in set(EVERY_TEMPLATE) - set(expected.templates):
            hidden = await error_of(session.complete(
                types.ResourceTemplateReference(type="ref/resource", uri=template),
                {"name": "id", "value": ""}))
            assert_same_error(hidden, template, unknown_completion, unknown_template)


async def test_default_persona_applies_and_a_new_persona_sees_nothing(
    persona_gateway: Any
) -> None:
    async with persona_gateway(None, {"default_persona": "nobody"}).connect() as session:
        assert await all_tools(session) == []
        assert await all_prompts(session) == []
        assert await all_resources(session) == []
        assert await all_templates(session) == []


async def test_live_persona_change_from_the_cli(persona_gateway: Any) -> None:
    gateway = persona_gateway("coder")
    notes = Notifications()

    async def persona_cli(*words: str) -> None:
        env = {**os.environ, **gateway.env()}
        done = await anyio.run_process(
            [sys.executable, *gateway.command_args("persona", "coder", *words)], env=env)
        assert done.returncode == 0

    async with gateway.connect(message_handler=notes) as session:
        assert [t.name for t in await all_tools(session)] == CODER.tools
        await persona_cli("enable", "beta")
        await notes.wait_for_type(types.ToolListChangedNotification)
        tools = [t.name for t in await all_tools(session)]
        assert tools == CODER.tools + SUPPORT.tools
        assert texts(await session.call_tool("beta__whoami", {})) == ["beta"]
        assert [str(r.uri) for r in await all_resources(session)] == EVERY_RESOURCE

        await persona_cli("disable", "alpha")
        await notes.wait_for_type(types.ToolListChangedNotification, count=2)
        assert [t.name for t in await all_tools(session)] == SUPPORT.tools
        hidden = await error_of(session.call_tool("alpha__echo", {"text": "x"}))
        unknown = await error_of(session.call_tool("nope__nothing", {}))
        assert_same_error(hidden, "alpha__echo", unknown, "nope__nothing")


async def test_start_with_an_unknown_persona_fails(persona_gateway: Any) -> None:
    gateway = persona_gateway(None)
    done = await anyio.run_process(
        [sys.executable, *gateway.command_args("start", "--persona", "ghost")],
        env={**os.environ, **gateway.env()}, check=False)
    assert done.returncode != 0
    assert b"unknown persona 'ghost'" in done.stderr
