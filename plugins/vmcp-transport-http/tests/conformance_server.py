"""The backend of the conformance run: what the server scenarios of the official MCP
conformance suite (``@modelcontextprotocol/conformance``) expect of the server they test.

Run as ``python conformance_server.py`` (stdio). The tests mount it with an empty prefix, so
the suite, talking to vmcp, sees these names unchanged:

- Tools: ``test_simple_text``, ``test_image_content``, ``test_audio_content``,
  ``test_embedded_resource``, ``test_multiple_content_types``, ``test_error_handling``
  (``isError: true``), ``test_tool_with_logging`` (three log lines, ~50 ms apart),
  ``test_tool_with_progress`` (progress 0, 50, 100 of 100), ``test_sampling(prompt)``,
  ``test_elicitation(message)``, ``test_elicitation_sep1034_defaults`` (defaults of every
  primitive type), ``test_elicitation_sep1330_enums`` (the five enum shapes),
  ``json_schema_2020_12_tool`` (an input schema with ``$schema``, ``$defs``, ``$ref``,
  ``additionalProperties``) and ``test_reconnection`` (answers after a short pause).
- Resources: ``test://static-text``, ``test://static-binary``, the template
  ``test://template/{id}/data`` and ``test://watched-resource`` (subscribable).
- Prompts: ``test_simple_prompt``, ``test_prompt_with_arguments(arg1, arg2)``,
  ``test_prompt_with_embedded_resource(resourceUri)``, ``test_prompt_with_image``.
- ``completion/complete`` for the arguments of ``test_prompt_with_arguments`` and the
  template's ``id``; ``logging/setLevel``.
"""

from __future__ import annotations

import base64
import json
import re
import warnings
from typing import Any

import anyio
import mcp.types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

Ctx = ServerRequestContext[Any]
INVALID_PARAMS = -32602
RESOURCE_NOT_FOUND = -32002

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
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
            }
        },
        "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
        "additionalProperties": False,
    }),
    _tool("test_reconnection", "Answers after a short pause."),
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


async def list_tools(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    """Every tool on one page."""
    return types.ListToolsResult(tools=TOOLS)


async def _elicited(ctx: Ctx, message: str, schema: dict[str, Any]) -> types.CallToolResult:
    answer = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    content = json.dumps(answer.content)
    return _result(_text(f"Elicitation completed: action={answer.action}, content={content}"))


async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    """Run one of the tools (see the module docstring)."""
    args = params.arguments or {}
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
            result = await session.create_message(
                [types.SamplingMessage(role="user", content=_text(str(args.get("prompt", ""))))],
                max_tokens=100, related_request_id=rid)
            content = result.content
            reply = content.text if isinstance(content, types.TextContent) else repr(content)
            return _result(_text(f"LLM response: {reply}"))
        case "test_elicitation":
            schema = _object({"username": _string("User's response"),
                              "email": _string("User's email address")}, ["username", "email"])
            return await _elicited(ctx, str(args.get("message", "")), schema)
        case "test_elicitation_sep1034_defaults":
            return await _elicited(ctx, "Please review and update the form fields with defaults",
                                   SEP1034_SCHEMA)
        case "test_elicitation_sep1330_enums":
            return await _elicited(ctx, "Please pick from the enum fields", SEP1330_SCHEMA)
        case "json_schema_2020_12_tool":
            return _result(_text(f"received: {json.dumps(args)}"))
        case "test_reconnection":
            await anyio.sleep(STEP)
            return _result(_text("Reconnection test completed"))
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
        raise MCPError(code=RESOURCE_NOT_FOUND, message="Resource not found", data={"uri": uri})
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
]


async def list_prompts(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListPromptsResult:
    """Every prompt."""
    return types.ListPromptsResult(prompts=PROMPTS)


def _user(content: Any) -> types.PromptMessage:
    return types.PromptMessage(role="user", content=content)


async def get_prompt(ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
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


async def main() -> None:
    """Serve over stdio until stdin closes."""
    server: Server[Any] = Server(
        "conformance-fixture", version="1.0.0",
        on_list_tools=list_tools, on_call_tool=call_tool,
        on_list_resources=list_resources, on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe, on_unsubscribe_resource=unsubscribe,
        on_list_prompts=list_prompts, on_get_prompt=get_prompt, on_completion=complete,
    )
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    options = server.create_initialization_options(NotificationOptions())
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, options)


if __name__ == "__main__":
    anyio.run(main)
