"""The backend of the conformance runs: what the server scenarios of the official MCP
conformance suite (``@modelcontextprotocol/conformance``) expect of the server they test, in
both protocol eras (the handshake era up to 2025-11-25 and the stateless 2026-07-28 era; the
SDK's ``Server`` answers both on one endpoint).

``python conformance_server.py`` serves stdio (the tests mount it in vmcp with an empty
prefix, so the suite, talking to vmcp, sees these names unchanged). ``... http`` serves
Streamable HTTP on a free loopback port printed as ``PORT <n>`` once listening (``--port N``
picks it), so the suite can also be run against the fixture directly.

- Tools: ``test_simple_text``, ``test_image_content``, ``test_audio_content``,
  ``test_embedded_resource``, ``test_multiple_content_types``, ``test_error_handling``
  (``isError: true``), ``test_tool_with_logging`` (three log lines, ~50 ms apart),
  ``test_tool_with_progress`` (progress 0, 50, 100 of 100), ``test_sampling(prompt)``,
  ``test_elicitation(message)``, ``test_elicitation_sep1034_defaults`` (defaults of every
  primitive type), ``test_elicitation_sep1330_enums`` (the five enum shapes),
  ``json_schema_2020_12_tool`` (an input schema with ``$schema``, ``$defs``, ``$anchor``,
  ``$ref``, ``allOf``, ``if``/``then``/``else``, ``additionalProperties``),
  ``test_reconnection`` (closes its SSE stream, then answers), ``test_x_mcp_header(region)``
  (a parameter mirrored into an ``Mcp-Param-Region`` header), ``test_missing_capability``
  (-32021 unless the client declared sampling), ``test_trigger_tool_change`` and
  ``test_trigger_prompt_change`` (announce a list change), ``test_logging_tool`` (one log
  line) and ``test_streaming_elicitation`` (asks a name with ``input_required``).
- The 2026-07-28 multi-round-trip tools (each answers ``input_required`` until the client
  retries with the answers): ``test_input_required_result_elicitation``, ``..._sampling``,
  ``..._list_roots``, ``..._request_state``, ``..._multiple_inputs``, ``..._multi_round``
  (three rounds), ``..._tampered_state`` and ``..._capabilities`` (asks only for what the
  client declared). ``requestState`` is sealed by the SDK's ``RequestStateBoundary``, so a
  tampered one is refused with -32602. On a handshake-era session the same questions are
  asked as server-to-client requests instead (elicitation, sampling, roots) and the call goes
  on with the answers, as a server of that era does. ``test_sampling`` and the
  ``test_elicitation*`` tools ask the same way, so that through a mount vmcp speaks
  2026-07-28 to, the handshake-era scenarios exercise vmcp's bridge from a handshake-era
  client to a 2026-07-28 backend.
- Resources: ``test://static-text``, ``test://static-binary``, the template
  ``test://template/{id}/data`` and ``test://watched-resource`` (subscribable).
- Prompts: ``test_simple_prompt``, ``test_prompt_with_arguments(arg1, arg2)``,
  ``test_prompt_with_embedded_resource(resourceUri)``, ``test_prompt_with_image`` and
  ``test_input_required_result_prompt`` (asks for its context with ``input_required``).
- ``completion/complete`` for the arguments of ``test_prompt_with_arguments`` and the
  template's ``id``; ``logging/setLevel``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# First: a warm start when the test session offers one (tests/fixtures/servers/prefork.py).
sys.path.append(str(Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "servers"))
import prefork  # noqa: F401

# isort: split

import argparse
import base64
import json
import re
import socket
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp.types as types
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.subscriptions import PromptsListChanged, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

Ctx = ServerRequestContext[Any]
Handler = Callable[[Ctx, Any], Awaitable[Any]]
INVALID_PARAMS = -32602
#: the code of an unknown resource: its own before 2026-07-28, invalid params since (SEP-2164)
RESOURCE_NOT_FOUND = -32002
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021

#: a 1x1 red PNG
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)).decode()
#: a WAV file holding one silent 8-bit sample
WAV = base64.b64encode(
    b"RIFF%\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00@\x1f\x00\x00"
    b"\x01\x00\x08\x00data\x01\x00\x00\x00\x80"
).decode()
STATIC_TEXT = "This is the content of the static text resource."
TEMPLATE = re.compile(r"^test://template/(?P<id>[^/]+)/data$")
WATCHED = "test://watched-resource"
#: seconds between the steps of the logging and progress tools
STEP = 0.05
#: how long ``test_reconnection`` waits before it answers, as the reference server's does
#: (longer than the front's reply grace, so its reply streams and can be resumed)
RECONNECTION_PAUSE = 0.1
#: rounds of input a handshake-era call may ask before the fixture gives up
MAX_ROUNDS = 5
#: milliseconds a client waits before it reconnects to a closed SSE stream
RETRY_INTERVAL_MS = 100


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _tool(name: str, description: str, schema: dict[str, Any] | None = None) -> types.Tool:
    return types.Tool(name=name, description=description, input_schema=schema or _object({}))


TOOLS = [
    _tool("test_simple_text", "Returns a simple text response."),
    _tool("test_image_content", "Returns a PNG image."),
    _tool("test_audio_content", "Returns a WAV sound."),
    _tool("test_embedded_resource", "Returns an embedded text resource."),
    _tool("test_multiple_content_types", "Returns text, an image and a resource."),
    _tool("test_tool_with_logging", "Sends three log messages while it runs."),
    _tool("test_error_handling", "Always fails (isError: true)."),
    _tool("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100."),
    _tool("test_sampling", "Asks the client's model to answer a prompt.",
          _object({"prompt": _string("The prompt to send to the LLM")}, ["prompt"])),
    _tool("test_elicitation", "Asks the user for a username and an email.",
          _object({"message": _string("The message to show the user")}, ["message"])),
    _tool("test_elicitation_sep1034_defaults", "Elicits fields that all have defaults."),
    _tool("test_elicitation_sep1330_enums", "Elicits the five kinds of enum."),
    _tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
            }
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"},
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": False,
    }),
    _tool("test_reconnection", "Closes its SSE stream, then answers after a short pause."),
    _tool("test_x_mcp_header", "Mirrors its region argument into the Mcp-Param-Region header.",
          _object({"region": {"type": "string", "default": "<none>", "x-mcp-header": "Region",
                              "description": "Mirrored into the Mcp-Param-Region header"}})),
    _tool("test_missing_capability", "Fails with -32021 unless the client declared sampling."),
    _tool("test_trigger_tool_change", "Announces that the tool list changed."),
    _tool("test_logging_tool", "Sends one log message, then answers."),
    _tool("test_streaming_elicitation", "Asks the user's name on its own response stream."),
    _tool("test_trigger_prompt_change", "Announces that the prompt list changed."),
    _tool("test_input_required_result_elicitation", "Asks the user's name (input_required)."),
    _tool("test_input_required_result_sampling", "Asks the client's model (input_required)."),
    _tool("test_input_required_result_list_roots", "Asks for the client's roots (input_required)."),
    _tool("test_input_required_result_request_state", "Round-trips a requestState."),
    _tool("test_input_required_result_multiple_inputs", "Asks for three inputs at once."),
    _tool("test_input_required_result_multi_round", "Asks twice, in two rounds."),
    _tool("test_input_required_result_tampered_state", "Answers with the state it gets back."),
    _tool("test_input_required_result_capabilities", "Asks only for what the client declared."),
]

SEP1034_SCHEMA = _object({
    "name": {"type": "string", "default": "John Doe"},
    "age": {"type": "integer", "default": 30},
    "score": {"type": "number", "default": 95.5},
    "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
    "verified": {"type": "boolean", "default": True},
})
SEP1330_SCHEMA = _object({
    "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
    "titledSingle": {"type": "string", "oneOf": [
        {"const": "value1", "title": "First Option"},
        {"const": "value2", "title": "Second Option"},
        {"const": "value3", "title": "Third Option"},
    ]},
    "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                   "enumNames": ["Option One", "Option Two", "Option Three"]},
    "untitledMulti": {"type": "array",
                      "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
    "titledMulti": {"type": "array", "items": {"anyOf": [
        {"const": "value1", "title": "First Choice"},
        {"const": "value2", "title": "Second Choice"},
        {"const": "value3", "title": "Third Choice"},
    ]}},
})


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


def _image() -> types.ImageContent:
    return types.ImageContent(type="image", data=PNG, mime_type="image/png")


def _result(*content: Any) -> types.CallToolResult:
    return types.CallToolResult(content=list(content))


def _embedded(uri: str, text: str, mime_type: str = "text/plain") -> types.EmbeddedResource:
    contents = types.TextResourceContents(uri=uri, text=text, mime_type=mime_type)
    return types.EmbeddedResource(type="resource", resource=contents)


NAME_SCHEMA = _object({"name": {"type": "string"}}, ["name"])
COLOR_SCHEMA = _object({"color": {"type": "string"}}, ["color"])
OK_SCHEMA = _object({"ok": {"type": "boolean"}}, ["ok"])
CONTEXT_SCHEMA = _object({"context": {"type": "string"}}, ["context"])

#: what ``subscriptions/listen`` streams (2026-07-28) are fed from
BUS = InMemorySubscriptionBus()


def _ask(message: str, schema: dict[str, Any]) -> types.ElicitRequest:
    return types.ElicitRequest(
        params=types.ElicitRequestFormParams(message=message, requested_schema=schema))


def _ask_model(prompt: str, max_tokens: int) -> types.CreateMessageRequest:
    return types.CreateMessageRequest(params=types.CreateMessageRequestParams(
        messages=[types.SamplingMessage(role="user", content=_text(prompt))],
        max_tokens=max_tokens))


def _needs(state: str | None = None, **requests: types.InputRequest) -> types.InputRequiredResult:
    return types.InputRequiredResult(input_requests=requests, request_state=state)


def _answer(params: types.InputResponseRequestParams, key: str) -> dict[str, Any] | None:
    """The client's answer to the input request ``key`` (as JSON), or ``None``."""
    answer = (params.input_responses or {}).get(key)
    return None if answer is None else answer.model_dump(mode="json", by_alias=True)


def _field(answer: dict[str, Any], name: str) -> Any:
    """A field of an elicitation answer's content."""
    return (answer.get("content") or {}).get(name)


def _multi_round(
    params: types.CallToolRequestParams,
) -> types.CallToolResult | types.InputRequiredResult:
    """Three rounds: ask a name, then a colour (the state carries the name), then answer."""
    state = json.loads(params.request_state) if params.request_state else {"round": 0}
    step1, step2 = _answer(params, "step1"), _answer(params, "step2")
    if state["round"] == 1 and step1 is not None:
        return _needs(json.dumps({"round": 2, "name": _field(step1, "name")}),
                      step2=_ask("Step 2: What is your favorite color?", COLOR_SCHEMA))
    if state["round"] == 2 and step2 is not None:
        return _result(_text(f"{state.get('name')} likes {_field(step2, 'color')}."))
    # the first round, or an answer missing or out of order: start again
    return _needs(json.dumps({"round": 1}), step1=_ask("Step 1: What is your name?", NAME_SCHEMA))


def _input_required_tool(
    ctx: Ctx, params: types.CallToolRequestParams
) -> types.CallToolResult | types.InputRequiredResult:
    """The ``test_input_required_result_*`` tools (2026-07-28 multi-round-trip requests)."""
    match params.name.removeprefix("test_input_required_result_"):
        case "elicitation":
            if (answer := _answer(params, "user_name")) is not None:
                return _result(_text(f"Hello, {_field(answer, 'name')}!"))
            return _needs(user_name=_ask("What is your name?", NAME_SCHEMA))
        case "sampling":
            if (answer := _answer(params, "capital_question")) is not None:
                return _result(_text(f"Model said: {(answer.get('content') or {}).get('text')}"))
            return _needs(capital_question=_ask_model("What is the capital of France?", 100))
        case "list_roots":
            if (answer := _answer(params, "client_roots")) is not None:
                return _result(_text(f"Client exposed {len(answer.get('roots') or [])} root(s)."))
            return _needs(client_roots=types.ListRootsRequest())
        case "request_state":
            if _answer(params, "confirm") is not None and params.request_state == "state-nonce":
                return _result(_text("state-ok: confirmation received"))
            return _needs("state-nonce", confirm=_ask("Please confirm", OK_SCHEMA))
        case "multiple_inputs":
            if all(_answer(params, key) is not None
                   for key in ("user_name", "greeting", "client_roots")):
                return _result(_text("All inputs received."))
            return _needs("multiple-inputs", user_name=_ask("What is your name?", NAME_SCHEMA),
                          greeting=_ask_model("Generate a greeting", 50),
                          client_roots=types.ListRootsRequest())
        case "multi_round":
            return _multi_round(params)
        case "tampered_state":
            if params.request_state is not None:
                return _result(_text(f"state-ok: {params.request_state}"))
            return _needs("round-1", confirm=_ask("Please confirm", OK_SCHEMA))
        case "capabilities":
            caps = ctx.session.client_capabilities
            requests: dict[str, types.InputRequest] = {}
            if caps is None or caps.sampling is not None:
                requests["sample"] = _ask_model("Say hello", 50)
            if caps is None or caps.elicitation is not None:
                requests["ask"] = _ask("What is your name?", NAME_SCHEMA)
            return _needs("capability-gated", **requests)
    raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {params.name}")


#: what each kind of input request is answered with
ANSWER_TYPE: dict[type[Any], type[Any]] = {
    types.ElicitRequest: types.ElicitResult,
    types.CreateMessageRequest: types.CreateMessageResult,
    types.ListRootsRequest: types.ListRootsResult,
}


async def _ask_peer(ctx: Ctx, request: types.InputRequest, answers: dict[str, Any],
                    key: str) -> None:
    """Send ``request`` to the client as a request of this call; keep its answer at ``key``."""
    answers[key] = await ctx.session.send_request(
        request, ANSWER_TYPE[type(request)],
        metadata=ServerMessageMetadata(related_request_id=ctx.request_id))


def asking_in_the_handshake_era(handler: Handler) -> Handler:
    """``handler``, with its ``input_required`` answered in place on a handshake-era session.

    A handshake-era server has no ``input_required``: it sends the same questions as
    server-to-client requests on its own request and goes on with the answers. So does this
    wrapper (running the handler again with the answers, as a 2026-07-28 client would retry),
    which is what vmcp's bridge must turn back into ``input_required`` for a modern client.
    """
    async def answered(ctx: Ctx, params: Any) -> Any:
        result = await handler(ctx, params)
        for _ in range(MAX_ROUNDS):
            if (not isinstance(result, types.InputRequiredResult)
                    or ctx.protocol_version in MODERN_PROTOCOL_VERSIONS):
                return result
            answers: dict[str, Any] = {}
            try:
                async with anyio.create_task_group() as tg:  # a round's questions at once
                    for key, request in (result.input_requests or {}).items():
                        tg.start_soon(_ask_peer, ctx, request, answers, key)
            except ExceptionGroup as group:  # the client's refusal, as it gave it
                first = group.exceptions[0]
                if isinstance(first, MCPError):
                    raise first from None
                raise
            params = params.model_copy(
                update={"input_responses": answers, "request_state": result.request_state})
            result = await handler(ctx, params)
        raise MCPError(code=INVALID_PARAMS, message=f"still no answer after {MAX_ROUNDS} rounds")
    return answered


async def list_tools(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    """Every tool on one page."""
    return types.ListToolsResult(tools=TOOLS)


def _elicited(params: types.CallToolRequestParams, message: str, schema: dict[str, Any]
              ) -> types.CallToolResult | types.InputRequiredResult:
    """The form answer to ``message`` as the handshake-era scenarios expect it, asked with
    ``input_required`` (so a 2026-07-28 request gets the question back, and a handshake-era
    session gets it as ``elicitation/create``, see :func:`asking_in_the_handshake_era`)."""
    if (answer := _answer(params, "form")) is None:
        return _needs(form=_ask(message, schema))
    content = json.dumps(answer.get("content"))
    return _result(_text(f"Elicitation completed: action={answer.get('action')}, "
                         f"content={content}"))


async def call_tool(
    ctx: Ctx, params: types.CallToolRequestParams
) -> types.CallToolResult | types.InputRequiredResult:
    """Run one of the tools (see the module docstring)."""
    args = params.arguments or {}
    if params.name.startswith("test_input_required_result_"):
        return _input_required_tool(ctx, params)
    session, rid = ctx.session, ctx.request_id
    match params.name:
        case "test_simple_text":
            return _result(_text("This is a simple text response for testing."))
        case "test_image_content":
            return _result(_image())
        case "test_audio_content":
            return _result(types.AudioContent(type="audio", data=WAV, mime_type="audio/wav"))
        case "test_embedded_resource":
            return _result(_embedded(
                "test://embedded-resource", "This is an embedded resource content."))
        case "test_multiple_content_types":
            data = json.dumps({"test": "data", "value": 123})
            return _result(
                _text("Multiple content types test:"),
                _image(),
                _embedded("test://mixed-content-resource", data, "application/json"),
            )
        case "test_tool_with_logging":
            for n, line in enumerate(
                    ["Tool execution started", "Tool processing data", "Tool execution completed"]):
                if n:
                    await anyio.sleep(STEP)
                await session.send_log_message("info", line, related_request_id=rid)
            return _result(_text("Tool with logging executed successfully"))
        case "test_error_handling":
            return types.CallToolResult(
                content=[_text("This tool intentionally returns an error for testing")],
                is_error=True)
        case "test_tool_with_progress":
            for n, value in enumerate((0, 50, 100)):
                if n:
                    await anyio.sleep(STEP)
                await session.report_progress(value, 100)
            return _result(_text("Tool with progress executed successfully"))
        case "test_sampling":
            if (answer := _answer(params, "reply")) is None:
                return _needs(reply=_ask_model(str(args.get("prompt", "")), 100))
            content = answer.get("content") or {}
            reply = content.get("text") if content.get("type") == "text" else repr(content)
            return _result(_text(f"LLM response: {reply}"))
        case "test_elicitation":
            schema = _object({"username": _string("User's response"),
                              "email": _string("User's email address")}, ["username", "email"])
            return _elicited(params, str(args.get("message", "")), schema)
        case "test_elicitation_sep1034_defaults":
            return _elicited(params, "Please review and update the form fields with defaults",
                             SEP1034_SCHEMA)
        case "test_elicitation_sep1330_enums":
            return _elicited(params, "Please pick from the enum fields", SEP1330_SCHEMA)
        case "json_schema_2020_12_tool":
            return _result(_text(f"received: {json.dumps(args)}"))
        case "test_reconnection":
            if ctx.close_sse_stream is not None:  # only over HTTP with an event store
                await ctx.close_sse_stream()
            await anyio.sleep(RECONNECTION_PAUSE)
            return _result(_text("Reconnection test completed"))
        case "test_x_mcp_header":
            return _result(_text(f"region={args.get('region', '<none>')}"))
        case "test_missing_capability":
            caps = ctx.session.client_capabilities
            if caps is None or caps.sampling is None:
                raise MCPError(code=MISSING_REQUIRED_CLIENT_CAPABILITY,
                               message="This tool requires the client 'sampling' capability",
                               data={"requiredCapabilities": {"sampling": {}}})
            return _result(_text("Client declared sampling capability; proceeding."))
        case "test_logging_tool":
            await session.send_log_message("info", "test_logging_tool ran", related_request_id=rid)
            return _result(_text("logged"))
        case "test_streaming_elicitation":
            if (answer := _answer(params, "user_name")) is not None:
                return _result(_text(f"Hello, {_field(answer, 'name')}!"))
            return _needs(user_name=_ask("What is your name?", NAME_SCHEMA))
        case "test_trigger_tool_change":
            await BUS.publish(ToolsListChanged())  # to 2026-07-28 listeners
            await session.send_tool_list_changed()  # to a handshake-era session
            return _result(_text("tool list changed"))
        case "test_trigger_prompt_change":
            await BUS.publish(PromptsListChanged())
            await session.send_prompt_list_changed()
            return _result(_text("prompt list changed"))
    raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {params.name}")


async def list_resources(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListResourcesResult:
    """The fixed resources."""
    return types.ListResourcesResult(resources=[
        types.Resource(uri="test://static-text", name="static-text", mime_type="text/plain",
                       description="A static text resource"),
        types.Resource(uri="test://static-binary", name="static-binary", mime_type="image/png",
                       description="A static PNG image"),
        types.Resource(uri=WATCHED, name="watched-resource", mime_type="text/plain",
                       description="A resource to subscribe to"),
    ])


async def list_templates(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListResourceTemplatesResult:
    """The one template."""
    return types.ListResourceTemplatesResult(resource_templates=[types.ResourceTemplate(
        uri_template="test://template/{id}/data", name="template-data",
        mime_type="application/json", description="Data for an id")])


async def read_resource(
    ctx: Ctx, params: types.ReadResourceRequestParams
) -> types.ReadResourceResult:
    """Read a fixed resource or the template's resource for one id."""
    uri = str(params.uri)
    contents: types.TextResourceContents | types.BlobResourceContents
    if uri == "test://static-text":
        contents = types.TextResourceContents(uri=uri, text=STATIC_TEXT, mime_type="text/plain")
    elif uri == "test://static-binary":
        contents = types.BlobResourceContents(uri=uri, blob=PNG, mime_type="image/png")
    elif uri == WATCHED:
        contents = types.TextResourceContents(uri=uri, text="watched", mime_type="text/plain")
    elif match := TEMPLATE.match(uri):
        item = match["id"]
        data = {"id": item, "templateTest": True, "data": f"Data for ID: {item}"}
        contents = types.TextResourceContents(
            uri=uri, text=json.dumps(data), mime_type="application/json")
    else:
        modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        code = INVALID_PARAMS if modern else RESOURCE_NOT_FOUND
        raise MCPError(code=code, message="Resource not found", data={"uri": uri})
    return types.ReadResourceResult(contents=[contents])


async def subscribe(ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
    """Accept a subscription (the resources never change)."""
    return types.EmptyResult()


async def unsubscribe(ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    """Accept an unsubscription."""
    return types.EmptyResult()


PROMPTS = [
    types.Prompt(name="test_simple_prompt", description="A prompt without arguments"),
    types.Prompt(name="test_prompt_with_arguments", description="A prompt with two arguments",
                 arguments=[
                     types.PromptArgument(name="arg1", description="First test argument",
                                          required=True),
                     types.PromptArgument(name="arg2", description="Second test argument",
                                          required=True),
                 ]),
    types.Prompt(name="test_prompt_with_embedded_resource",
                 description="A prompt embedding a resource",
                 arguments=[types.PromptArgument(name="resourceUri", required=True,
                                                 description="URI of the resource to embed")]),
    types.Prompt(name="test_prompt_with_image", description="A prompt with an image"),
    types.Prompt(name="test_input_required_result_prompt",
                 description="A prompt that asks the client for its context (input_required)"),
]


async def list_prompts(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListPromptsResult:
    """Every prompt."""
    return types.ListPromptsResult(prompts=PROMPTS)


def _user(content: Any) -> types.PromptMessage:
    return types.PromptMessage(role="user", content=content)


async def get_prompt(
    ctx: Ctx, params: types.GetPromptRequestParams
) -> types.GetPromptResult | types.InputRequiredResult:
    """Render one prompt."""
    args = params.arguments or {}
    match params.name:
        case "test_simple_prompt":
            messages = [_user(_text("This is a simple prompt for testing."))]
        case "test_prompt_with_arguments":
            messages = [_user(_text(
                f"Prompt with arguments: arg1='{args.get('arg1')}', arg2='{args.get('arg2')}'"))]
        case "test_prompt_with_embedded_resource":
            uri = args.get("resourceUri") or "test://example-resource"
            messages = [_user(_embedded(uri, "Embedded resource content for testing.")),
                        _user(_text("Please process the embedded resource above."))]
        case "test_prompt_with_image":
            messages = [_user(_image()), _user(_text("Please analyze the image above."))]
        case "test_input_required_result_prompt":
            answer = _answer(params, "user_context")
            if answer is None:
                return _needs(user_context=_ask("What context should the prompt use?",
                                                CONTEXT_SCHEMA))
            messages = [_user(_text(f"Use the following context: {_field(answer, 'context')}"))]
        case _:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {params.name}")
    return types.GetPromptResult(messages=messages)


async def complete(ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
    """Values starting with what the client typed."""
    candidates = {"arg1": ["paris", "park", "party", "test-value"],
                  "arg2": ["world", "wonder"], "id": ["123", "456"]}
    prefix = params.argument.value
    values = [v for v in candidates.get(params.argument.name, []) if v.startswith(prefix)]
    return types.CompleteResult(
        completion=types.Completion(values=values, total=len(values), has_more=False))


async def set_level(ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
    """Accept a log level (the gateway filters what its clients get)."""
    return types.EmptyResult()


class MemoryEventStore(EventStore):
    """The SSE events of this process, so a client can resume a closed stream (HTTP only)."""

    def __init__(self) -> None:
        self._events: list[tuple[str, types.JSONRPCMessage | None]] = []

    async def store_event(self, stream_id: str, message: types.JSONRPCMessage | None) -> str:
        """Keep one event; its id is its position."""
        self._events.append((stream_id, message))
        return str(len(self._events))

    async def replay_events_after(
        self, last_event_id: str, send_callback: EventCallback
    ) -> str | None:
        """Send the events of ``last_event_id``'s stream that came after it."""
        if not last_event_id.isdigit() or not 0 < int(last_event_id) <= len(self._events):
            return None
        start = int(last_event_id)
        stream_id = self._events[start - 1][0]
        for number, (stream, message) in enumerate(self._events[start:], start + 1):
            if stream == stream_id and message is not None:
                await send_callback(EventMessage(message, str(number)))
        return stream_id


def build_server() -> Server[Any]:
    """The fixture server (both eras; ``requestState`` sealed with a key of this process)."""
    server: Server[Any] = Server(
        "conformance-fixture", version="1.0.0",
        on_list_tools=list_tools, on_call_tool=asking_in_the_handshake_era(call_tool),
        on_list_resources=list_resources, on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe, on_unsubscribe_resource=unsubscribe,
        on_subscriptions_listen=ListenHandler(BUS),
        on_list_prompts=list_prompts, on_get_prompt=asking_in_the_handshake_era(get_prompt),
        on_completion=complete,
    )
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    server.middleware.append(
        RequestStateBoundary(RequestStateSecurity.ephemeral(), default_audience=server.name))
    return server


OPTIONS = NotificationOptions(tools_changed=True, prompts_changed=True)


async def serve_stdio(server: Server[Any]) -> None:
    """Serve over stdio until stdin closes."""
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options(OPTIONS))


async def serve_http(server: Server[Any], port: int) -> None:
    """Serve Streamable HTTP on ``127.0.0.1:port`` (0: a free one), printing ``PORT <n>``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    app = server.streamable_http_app(event_store=MemoryEventStore(),
                                     retry_interval=RETRY_INTERVAL_MS)
    # h11: with httptools installed uvicorn would parse with it, which keeps a header
    # value's trailing whitespace, and the SDK compares such a value as it is
    config = uvicorn.Config(app, http="h11", log_level="warning", lifespan="on")
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> None:
    """Serve stdio (the default) or, with ``http``, Streamable HTTP."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = build_server()
    if args.mode == "http":
        anyio.run(serve_http, server, args.port)
    else:
        anyio.run(serve_stdio, server)


if __name__ == "__main__":
    main()
