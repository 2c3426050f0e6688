"""The request headers of 2026-07-28 Streamable HTTP, and how a server checks them.

A modern client mirrors parts of each request body into headers so that intermediaries can
route without reading the body: ``MCP-Protocol-Version`` (the ``_meta`` version),
``Mcp-Method``, ``Mcp-Name`` (the tool or prompt name, or the resource URI) and one
``Mcp-Param-{X}`` per tool argument whose schema carries ``"x-mcp-header": "X"``. A server
that reads the body must refuse a request whose headers disagree with it (-32020). Values
that are not plain header text travel as ``=?base64?{UTF-8 in Base64}?=``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from vmcp.protocol.eras import HEADER_MISMATCH
from vmcp.protocol.errors import RpcError
from vmcp_transport_http.modern_request import argument_at, header_form

#: a request's headers (names compared ignoring case; a name may come more than once)
Headers = CIMultiDictProxy[str] | CIMultiDict[str]

VERSION_HEADER = "MCP-Protocol-Version"
METHOD_HEADER = "Mcp-Method"
NAME_HEADER = "Mcp-Name"
PARAM_PREFIX = "Mcp-Param-"
#: the schema annotation naming an argument's header
X_MCP_HEADER = "x-mcp-header"
#: method -> the params member ``Mcp-Name`` mirrors
NAMED_BY = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}

_SENTINEL = re.compile(r"=\?base64\?(.*)\?=", re.DOTALL)
#: an RFC 9110 token: what a header name (and so an ``x-mcp-header`` value) may be
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PRIMITIVES = frozenset(("string", "integer", "boolean"))


def is_token(value: str) -> bool:
    """Whether ``value`` is an RFC 9110 token, as a header name must be."""
    return _TOKEN.fullmatch(value) is not None


def decode_value(value: str) -> str | None:
    """A header value as the client meant it: the Base64 form decoded; None when that form
    is malformed (not canonical Base64, or not UTF-8), so it can never match a body value."""
    if not value.startswith("=?"):  # plain text, the common case: no pattern to try
        return value
    match = _SENTINEL.fullmatch(value)
    if match is None:
        return value
    payload = match.group(1)
    try:
        raw = base64.b64decode(payload, validate=True)
        if base64.b64encode(raw).decode("ascii") != payload:
            return None
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def check_headers(headers: Headers, method: Any, params: Mapping[str, Any],
                  version: Any) -> None:
    """Check the standard headers of a modern request against its body.

    :raises RpcError: -32020 when ``MCP-Protocol-Version`` differs from the ``_meta``
        version, ``Mcp-Method`` from the method, or ``Mcp-Name`` from the name or URI
        (each is required; a header given twice is refused, as readers of the first and the
        last copy would disagree).
    """
    _one(headers, VERSION_HEADER, version, "the protocol version in _meta")
    _one(headers, METHOD_HEADER, method, "the method")
    member = NAMED_BY.get(method)
    if member is not None:
        _one(headers, NAME_HEADER, params.get(member), f"params.{member}", encoded=True)


def _one(headers: Headers, name: str, expected: Any, what: str, *,
         encoded: bool = False) -> None:
    values = headers.getall(name, [])
    if not values:
        raise RpcError(HEADER_MISMATCH, f"Header mismatch: the {name} header is required")
    if len(values) > 1:
        raise RpcError(HEADER_MISMATCH, f"Header mismatch: the {name} header appears twice")
    value = decode_value(values[0]) if encoded else values[0]
    if value != expected:
        raise RpcError(HEADER_MISMATCH,
                       f"Header mismatch: the {name} header does not match {what}")


#: what a tool's arguments mirror: ``(argument path, header token, JSON type)`` each
ParamHeaders = list[tuple[tuple[str, ...], str, str]]


def param_headers(input_schema: Any) -> ParamHeaders | None:
    """The ``(argument path, header token, type)`` of every ``x-mcp-header`` a tool's input
    schema declares; None when an annotation breaks the rules (empty or not a token, twice
    the same ignoring case, on a type other than string, integer or boolean, or reached
    through anything but ``properties``): clients drop such a tool, so nothing is checked."""
    found: ParamHeaders = []
    seen: set[str] = set()
    for path, schema in _positions(input_schema):
        if X_MCP_HEADER not in schema:
            continue
        token, kind = schema[X_MCP_HEADER], schema.get("type")
        if (not path or not isinstance(token, str) or not _TOKEN.fullmatch(token)
                or token.lower() in seen or kind not in _PRIMITIVES):
            return None
        seen.add(token.lower())
        found.append((path, token, kind))
    return found


#: schema keywords whose values are schemas (entered, but off the ``properties`` chain)
_ONE_SCHEMA = frozenset(("items", "contains", "additionalProperties", "propertyNames", "not",
                         "if", "then", "else", "unevaluatedItems", "unevaluatedProperties",
                         "contentSchema"))
_SCHEMA_LISTS = frozenset(("allOf", "anyOf", "oneOf", "prefixItems"))
_SCHEMA_MAPS = frozenset(("patternProperties", "dependentSchemas", "$defs", "definitions"))


def _positions(root: Any) -> Iterator[tuple[tuple[str, ...] | None, dict[str, Any]]]:
    """Every schema position under ``root`` with its chain of ``properties`` keys (None once
    the walk left that chain). ``$ref`` is not followed; an explicit stack bounds the walk."""
    stack: list[tuple[tuple[str, ...] | None, Any]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict):
            continue
        yield path, node
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                stack.extend(((*path, name) if path is not None else None, sub)
                             for name, sub in value.items())
            elif key in _ONE_SCHEMA:
                stack.append((None, value))
            elif key in _SCHEMA_LISTS and isinstance(value, list):
                stack.extend((None, sub) for sub in value)
            elif key in _SCHEMA_MAPS and isinstance(value, dict):
                stack.extend((None, sub) for sub in value.values())


def check_param_headers(headers: Headers, declared: ParamHeaders,
                        arguments: Mapping[str, Any]) -> None:
    """Check a ``tools/call``'s ``Mcp-Param-*`` headers against its arguments: each argument
    ``declared`` (:func:`param_headers`) must come with its header, equal once decoded
    (integers compared as numbers), and a header must not come without its argument
    (``null`` counts as absent).

    :raises RpcError: -32020 naming the first header that disagrees.
    """
    for path, token, kind in declared:
        name = PARAM_PREFIX + token
        values = headers.getall(name, [])
        value = argument_at(arguments, path)
        argument = ".".join(path)
        if len(values) > 1:
            raise RpcError(HEADER_MISMATCH, f"Header mismatch: the {name} header appears twice")
        rendered = header_form(value)
        if rendered is None:
            if values:
                raise RpcError(HEADER_MISMATCH, f"Header mismatch: {name} is sent but the "
                               f"argument {argument!r} is absent or not a plain value")
            continue
        if not values:
            raise RpcError(HEADER_MISMATCH, f"Header mismatch: the {name} header is missing "
                           f"for the argument {argument!r}")
        sent = decode_value(values[0])
        if sent is None or not _matches(kind, value, rendered, sent):
            raise RpcError(HEADER_MISMATCH, f"Header mismatch: the {name} header does not "
                           f"match the argument {argument!r}")


_DECIMAL = re.compile(r"-?[0-9]+(?:\.0+)?")


def _matches(kind: str, value: Any, rendered: str, sent: str) -> bool:
    if (kind == "integer" and not isinstance(value, bool) and isinstance(value, int | float)
            and float(value).is_integer() and _DECIMAL.fullmatch(sent)):
        return int(sent.partition(".")[0]) == int(value)
    return sent == rendered
