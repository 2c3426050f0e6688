"""Tool search: in place of a long ``tools/list``, a few meta-tools that find, describe and call.

``[gateway] tool_exposure`` (or a persona's own ``tool_exposure``) chooses what ``tools/list``
shows a caller: ``all`` every tool it may see, ``search`` the three meta-tools, ``auto`` the
meta-tools once it may see more than ``[gateway] search_threshold`` tools or tools estimated
at more than ``search_token_threshold`` tokens (:func:`estimated_tokens`). The tools stay
callable by their exposed names in every mode.

With ``[gateway] promote_tools = N``, the last N tools a searching session described join
its ``tools/list`` after the meta-tools, and the session is sent ``tools/list_changed``, so a
client that refreshes can call them as usual.

The index is an in-memory SQLite FTS5 table over the exposed name, title, description and
parameter names of every tool in the namespace, ranked by BM25; it is built at the first
search after the namespace changed. Results are filtered by the caller's visibility, so a tool
the caller may not see is never found, described or counted.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import INVALID_PARAMS, RpcError
from vmcp.routing.request import HANDSHAKE, Request

if TYPE_CHECKING:
    import sqlite3

    from vmcp.gateway.gateway import Gateway
    from vmcp.gateway.namespace import Namespace
    from vmcp.gateway.session import FrontSession
    from vmcp.routing.middleware import Caller

SEARCH, DESCRIBE, CALL = "search_tools", "describe_tools", "call_tool"
#: the prefix of the meta-tools' names (before the gateway's separator)
META_PREFIX = "vmcp"
DEFAULT_LIMIT = 5
MAX_LIMIT = 50
#: BM25 weights of the indexed columns: name, title, description, parameter names
WEIGHTS = (8.0, 4.0, 1.0, 2.0)

_WORD_RE = re.compile(r"[A-Za-z0-9]+")
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def estimated_tokens(tool: dict[str, Any]) -> int:
    """About how many tokens a tool's definition costs a model: one per four characters of
    its compact JSON (the usual rule of thumb for English text and JSON)."""
    return len(json.dumps(tool, separators=(",", ":"), ensure_ascii=False)) // 4


def _words(text: str) -> str:
    """``text`` split into plain words: ``get_currentTime`` -> ``get current Time``."""
    return " ".join(_WORD_RE.findall(_CAMEL_RE.sub(" ", text)))


def _param_names(tool: dict[str, Any]) -> str:
    schema = tool.get("inputSchema")
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return " ".join(_words(name) for name in properties) if isinstance(properties, dict) else ""


def _match_expression(query: str) -> str | None:
    """An FTS5 expression matching any word of ``query`` (each one quoted, so none is syntax)."""
    words = _WORD_RE.findall(_CAMEL_RE.sub(" ", query).lower())
    return " OR ".join(f'"{word}"' for word in words) or None


def _meta_tools(separator: str) -> list[dict[str, Any]]:
    name = f"{META_PREFIX}{separator}"
    return [
        {
            "name": name + SEARCH,
            "title": "Search tools",
            "description": "Find the tools that fit a task. Give a few keywords; returns the "
                           "best matching tools' names and descriptions, best first. Use "
                           f"{name}{DESCRIBE} for their parameters, then {name}{CALL}.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "keywords describing the task"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                              "description": f"how many tools at most (default {DEFAULT_LIMIT})"},
                },
                "required": ["query"],
            },
            "annotations": {"readOnlyHint": True, "idempotentHint": True},
        },
        {
            "name": name + DESCRIBE,
            "title": "Describe tools",
            "description": "The full definitions (input and output schemas) of tools named "
                           "by a search.",
            "inputSchema": {
                "type": "object",
                "properties": {"names": {"type": "array", "items": {"type": "string"},
                                         "minItems": 1}},
                "required": ["names"],
            },
            "annotations": {"readOnlyHint": True, "idempotentHint": True},
        },
        {
            "name": name + CALL,
            "title": "Call a tool",
            "description": "Call a tool found by a search, by its name, with its arguments.",
            "inputSchema": {
                "type": "object",
                "properties": {"name": {"type": "string"},
                               "arguments": {"type": "object"}},
                "required": ["name"],
            },
        },
    ]


def _text_result(value: dict[str, Any]) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": json.dumps(value, ensure_ascii=False)}],
            "structuredContent": value}


class ToolSearch:
    """The meta-tools of one gateway and the full-text index behind them."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        separator = gateway.config.gateway.separator
        self.meta_list = _meta_tools(separator)
        self.meta_names = frozenset(tool["name"] for tool in self.meta_list)
        self._call_name = f"{META_PREFIX}{separator}{CALL}"
        self._db: sqlite3.Connection | None = None
        self._indexed: Namespace | None = None
        #: session id -> the exposed names of its promoted tools, oldest first
        self._promoted: dict[str, dict[str, None]] = {}
        #: id of a tool of ``_sized`` -> its estimated tokens
        self._tokens: dict[int, int] = {}
        self._sized: Namespace | None = None

    # -- what tools/list shows ---------------------------------------------------------------

    def mode(self, caller: Caller) -> str:
        """The caller's ``tool_exposure``: its persona's when set, else the gateway's."""
        access = self.gateway.access
        principal = caller.principal
        if access is not None and principal is not None and principal.persona is not None:
            persona = access.policy.personas.get(principal.persona)
            if persona is not None and persona.tool_exposure is not None:
                return persona.tool_exposure
        return self.gateway.config.gateway.tool_exposure

    def searching(self, caller: Caller, tools: list[dict[str, Any]]) -> bool:
        """True when ``caller``, who may see ``tools``, is shown the meta-tools instead."""
        mode = self.mode(caller)
        if mode == "auto":
            settings = self.gateway.config.gateway
            return len(tools) > settings.search_threshold \
                or self.tokens(tools) > settings.search_token_threshold
        return mode == "search"

    def tokens(self, tools: list[dict[str, Any]]) -> int:
        """The estimated tokens of ``tools`` (tools of the current namespace)."""
        namespace = self.gateway.namespace
        if self._sized is not namespace:
            self._tokens = {id(tool): estimated_tokens(tool) for tool in namespace.tool_list}
            self._sized = namespace
        known = self._tokens
        return sum(known.get(id(tool)) or estimated_tokens(tool) for tool in tools)

    def shown(self, caller: Caller, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What ``tools/list`` shows ``caller``, given the tools it may see."""
        if not self.searching(caller, tools):
            return tools
        promoted = self._promoted.get(caller.session_id)
        if not promoted:
            return self.meta_list
        return self.meta_list + [tool for tool in tools if tool["name"] in promoted]

    def _promote(self, session: FrontSession, tools: list[dict[str, Any]]) -> None:
        """Promote the described ``tools`` into ``session``'s list; announce a change."""
        limit = self.gateway.config.gateway.promote_tools
        caller = session.caller
        if not limit or not tools or (self.mode(caller) == "auto" and not self.searching(
                caller, self._visible_list(caller))):
            return
        sessions = self.gateway.sessions
        for gone in [sid for sid in self._promoted if sid not in sessions]:
            del self._promoted[gone]
        promoted = self._promoted.setdefault(session.session_id, {})
        before = set(promoted)
        for tool in tools:
            promoted.pop(tool["name"], None)
            promoted[tool["name"]] = None
        while len(promoted) > limit:
            del promoted[next(iter(promoted))]
        if set(promoted) != before:
            session.send(jsonrpc.notification("notifications/tools/list_changed"))

    # -- the meta-tools ----------------------------------------------------------------------

    def call(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        """Run ``search_tools`` or ``describe_tools``; the result to send back.

        :raises RpcError: bad arguments.
        """
        arguments = params.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise RpcError(INVALID_PARAMS, "arguments must be an object")
        if params["name"].endswith(SEARCH):
            return _text_result({"tools": self.search(caller, arguments.get("query"),
                                                      arguments.get("limit", DEFAULT_LIMIT))})
        names = arguments.get("names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RpcError(INVALID_PARAMS, "names must be a list of tool names")
        found = self._visible_tools(caller, names)
        return _text_result({"tools": list(found.values()),
                             "unknown": [name for name in names if name not in found]})

    def take(self, request: Request, params: dict[str, Any]) -> dict[str, Any] | None:
        """Take a ``tools/call`` of a meta-tool: answer it, or return the call it stands for.

        For a caller with ``tool_exposure = "all"`` the meta-tools do not exist: ``params``
        come back unchanged (and are unknown to the namespace).

        :raises RpcError: bad arguments.
        """
        if self.mode(request.caller) == "all":
            return params
        inner = self.unwrap(params)
        if inner is None:
            result = self.call(request.caller, params)
            request.sink.deliver(request, jsonrpc.result(request.id, result))
            if params["name"].endswith(DESCRIBE) and request.era == HANDSHAKE:
                # a handshake session is told its list changed; a stateless caller has none
                described = result["structuredContent"]["tools"]
                self._promote(request.sink, described)  # type: ignore[arg-type]
        return inner

    def unwrap(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """For ``call_tool``, the params of the call it stands for; None for another meta-tool.

        :raises RpcError: bad arguments.
        """
        if params["name"] != self._call_name:
            return None
        arguments = params.get("arguments") or {}
        inner = arguments.get("name") if isinstance(arguments, dict) else None
        inner_arguments = arguments.get("arguments", {}) if isinstance(arguments, dict) else None
        if not isinstance(inner, str) or not isinstance(inner_arguments, dict):
            raise RpcError(INVALID_PARAMS, f"{self._call_name} needs a tool name and an "
                                           "arguments object")
        return {**params, "name": inner, "arguments": inner_arguments}

    def search(self, caller: Caller, query: Any, limit: Any) -> list[dict[str, Any]]:
        """The ``limit`` best visible tools for ``query``: name, title, description.

        :raises RpcError: a query that is not text, or a bad limit.
        """
        if not isinstance(query, str) or not query.strip():
            raise RpcError(INVALID_PARAMS, "query must be a non-empty string")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise RpcError(INVALID_PARAMS, f"limit must be an integer from 1 to {MAX_LIMIT}")
        expression = _match_expression(query)
        if expression is None:
            return []
        namespace = self.gateway.namespace
        db = self._index(namespace)
        rows = db.execute(
            "SELECT rowid FROM tools WHERE tools MATCH ? ORDER BY bm25(tools, ?, ?, ?, ?)",
            (expression, *WEIGHTS))
        visible = self.gateway.visible
        found = []
        for (row,) in rows:
            mount_id, name = namespace.list_routes["tools"][row]
            if visible is not None and not visible(caller, mount_id, "tool", name):
                continue
            tool = namespace.tool_list[row]
            found.append({key: tool[key] for key in ("name", "title", "description")
                          if key in tool})
            if len(found) == limit:
                break
        return found

    def _visible_list(self, caller: Caller) -> list[dict[str, Any]]:
        namespace = self.gateway.namespace
        visible = self.gateway.visible
        if visible is None:
            return namespace.tool_list
        return [tool for tool, (mount_id, name) in zip(
            namespace.tool_list, namespace.list_routes["tools"], strict=True)
            if visible(caller, mount_id, "tool", name)]

    def _visible_tools(self, caller: Caller, names: list[str]) -> dict[str, dict[str, Any]]:
        namespace = self.gateway.namespace
        visible = self.gateway.visible
        wanted = set(names)
        return {
            tool["name"]: tool
            for tool, (mount_id, name) in zip(namespace.tool_list, namespace.list_routes["tools"],
                                              strict=True)
            if tool["name"] in wanted
            and (visible is None or visible(caller, mount_id, "tool", name))
        }

    def _index(self, namespace: Namespace) -> sqlite3.Connection:
        """The index of ``namespace``'s tools (rowid = position in its tool list)."""
        if self._db is not None and self._indexed is namespace:
            return self._db
        if self._db is not None:
            self._db.close()
        import sqlite3  # only once a search needs the index (tool_exposure search or auto)

        db = sqlite3.connect(":memory:", check_same_thread=False)
        db.execute("CREATE VIRTUAL TABLE tools USING fts5("
                   "name, title, description, params, tokenize = 'porter unicode61')")
        db.executemany(
            "INSERT INTO tools (rowid, name, title, description, params) VALUES (?, ?, ?, ?, ?)",
            [(row, _words(tool["name"]), _words(str(tool.get("title") or "")),
              str(tool.get("description") or ""), _param_names(tool))
             for row, tool in enumerate(namespace.tool_list)])
        self._db, self._indexed = db, namespace
        return db
