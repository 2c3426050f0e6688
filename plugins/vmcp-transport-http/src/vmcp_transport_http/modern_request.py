"""The headers vmcp sends with a 2026-07-28 request to a Streamable HTTP backend.

A modern client mirrors parts of the body into headers so that intermediaries can route
without reading it: ``MCP-Protocol-Version`` (the ``_meta`` version), ``Mcp-Method``,
``Mcp-Name`` (the tool or prompt name, or the resource URI) and one ``Mcp-Param-{X}`` per
``tools/call`` argument whose input schema property carries ``"x-mcp-header": "X"``. The
server checks them against the body. A value that is not plain printable ASCII without edge
whitespace travels as ``=?base64?{UTF-8 in Base64}?=``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

VERSION_HEADER = "MCP-Protocol-Version"
METHOD_HEADER = "Mcp-Method"
NAME_HEADER = "Mcp-Name"
PARAM_PREFIX = "Mcp-Param-"
X_MCP_HEADER = "x-mcp-header"
#: method -> the params member ``Mcp-Name`` mirrors
NAMED_BY = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
#: argument path -> header token, for one tool
ParamHeaders = dict[tuple[str, ...], str]

_SAFE = re.compile(r"[\x20-\x7e]*")
_SENTINEL = re.compile(r"=\?base64\?.*\?=", re.DOTALL)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PRIMITIVES = frozenset(("string", "integer", "boolean"))


def encode_value(value: str) -> str:
    """``value`` as a header value: itself when safe, else the Base64 form."""
    if _SAFE.fullmatch(value) and value == value.strip() and not _SENTINEL.fullmatch(value):
        return value
    return f"=?base64?{base64.b64encode(value.encode('utf-8')).decode('ascii')}?="


def param_headers(input_schema: Any) -> ParamHeaders:
    """The argument paths a tool's input schema marks with ``x-mcp-header`` (reached through
    ``properties`` only, on string, integer or boolean properties), with their tokens."""
    found: ParamHeaders = {}
    stack: list[tuple[tuple[str, ...], Any]] = [((), input_schema)]
    while stack:
        path, schema = stack.pop()
        if not isinstance(schema, dict):
            continue
        token = schema.get(X_MCP_HEADER)
        if (path and isinstance(token, str) and _TOKEN.fullmatch(token)
                and schema.get("type") in _PRIMITIVES):
            found[path] = token
        properties = schema.get("properties")
        if isinstance(properties, dict):
            stack.extend(((*path, name), sub) for name, sub in properties.items())
    return found


def request_headers(message: Mapping[str, Any], version: str,
                    tools: Mapping[str, ParamHeaders]) -> dict[str, str]:
    """The modern headers of one request; ``tools`` maps a tool name to its param headers."""
    method = message.get("method")
    headers = {VERSION_HEADER: version, METHOD_HEADER: str(method)}
    params = message.get("params")
    member = NAMED_BY.get(method)  # type: ignore[arg-type]
    if member is None or not isinstance(params, dict):
        return headers
    name = params.get(member)
    if isinstance(name, str):
        headers[NAME_HEADER] = encode_value(name)
    marked = tools.get(name) if method == "tools/call" and isinstance(name, str) else None
    if marked:
        arguments = params.get("arguments")
        for path, token in marked.items():
            rendered = header_form(argument_at(arguments, path))
            if rendered is not None:
                headers[PARAM_PREFIX + token] = encode_value(rendered)
    return headers


def argument_at(arguments: Any, path: tuple[str, ...]) -> Any:
    """The tool argument at ``path`` (nested object keys), or None."""
    node = arguments
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def header_form(value: Any) -> str | None:
    """An argument as it is written into its header (None: it has no header form)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None
