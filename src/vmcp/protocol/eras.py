"""The 2026-07-28 ("modern") era: its versions, ``_meta`` keys, error codes, and how a request
says which era it speaks.

The handshake era negotiates once per session; the modern era says its version, the client's
capabilities and its log level in every request's ``_meta``. Every front decides the era of
each request with :func:`modern_version`, so all of them draw the line in the same place.
"""

from __future__ import annotations

from typing import Any

from vmcp.protocol.versions import HANDSHAKE_VERSIONS

#: modern-era revisions vmcp speaks, oldest first
MODERN_VERSIONS: tuple[str, ...] = ("2026-07-28",)
LATEST_MODERN_VERSION = MODERN_VERSIONS[-1]
#: every revision, as ``server/discover`` lists them
ALL_VERSIONS: tuple[str, ...] = HANDSHAKE_VERSIONS + MODERN_VERSIONS

PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL = "io.modelcontextprotocol/logLevel"
SERVER_INFO = "io.modelcontextprotocol/serverInfo"
SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"

#: a header disagrees with the body (HTTP)
HEADER_MISMATCH = -32020
#: the request needs a client capability the request did not declare
MISSING_CLIENT_CAPABILITY = -32021
#: the requested protocol version is not one the server speaks
UNSUPPORTED_PROTOCOL_VERSION = -32022

#: the methods a modern client may send
MODERN_REQUESTS = frozenset((
    "server/discover", "tools/list", "tools/call", "resources/list", "resources/templates/list",
    "resources/read", "prompts/list", "prompts/get", "completion/complete",
    "subscriptions/listen",
))
#: the requests whose result may be ``input_required``
INPUT_REQUIRED_METHODS = frozenset(("tools/call", "prompts/get", "resources/read"))
#: results that carry ``ttlMs`` and ``cacheScope``
CACHEABLE_METHODS = frozenset((
    "server/discover", "tools/list", "prompts/list", "resources/list",
    "resources/templates/list", "resources/read",
))


def modern_version(params: Any) -> Any:
    """The protocol version a request's ``_meta`` names, or None for a handshake-era request.

    Anything present under the key counts (even a version vmcp does not speak, which is
    refused with -32022 rather than mistaken for the handshake era).
    """
    if type(params) is not dict:
        return None
    meta = params.get("_meta")
    if type(meta) is not dict:
        return None
    return meta.get(PROTOCOL_VERSION)


def is_modern_request(message: Any) -> bool:
    """True when a decoded JSON-RPC request speaks the modern era (``server/discover`` always
    does; any other request by the version in its ``_meta``)."""
    if type(message) is not dict:
        return False
    return message.get("method") == "server/discover" or (
        modern_version(message.get("params")) is not None)


def unsupported_version_data(requested: Any) -> dict[str, Any]:
    """The ``data`` of a -32022 error: what vmcp speaks and what was asked for."""
    return {"supported": list(ALL_VERSIONS), "requested": requested}
