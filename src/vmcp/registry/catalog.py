"""Reading a backend's lists (tools, prompts, resources, templates), every page of them."""

from __future__ import annotations

from typing import Any

from vmcp.protocol.errors import INTERNAL_ERROR, METHOD_NOT_FOUND, RpcError
from vmcp.upstream.session import UpstreamSession

#: list kind -> (method, result key, capability that announces it)
LIST_KINDS: dict[str, tuple[str, str, str]] = {
    "tools": ("tools/list", "tools", "tools"),
    "prompts": ("prompts/list", "prompts", "prompts"),
    "resources": ("resources/list", "resources", "resources"),
    "resource_templates": ("resources/templates/list", "resourceTemplates", "resources"),
}
#: the notification that says a kind changed -> the kinds to re-read
CHANGED_KINDS: dict[str, tuple[str, ...]] = {
    "notifications/tools/list_changed": ("tools",),
    "notifications/prompts/list_changed": ("prompts",),
    "notifications/resources/list_changed": ("resources", "resource_templates"),
}
#: lists a backend may leave unimplemented although it declares their capability
OPTIONAL_KINDS = frozenset({"resource_templates"})
_MAX_PAGES = 10_000


async def fetch_list(
    upstream: UpstreamSession, kind: str, timeout: float, hints: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every item of one list, following ``nextCursor`` until the backend stops.

    An optional list the backend does not implement (-32601 on the first page) is empty.
    ``hints``, when given, gets the cache hints of the pages (2026-07-28 backends): the
    smallest ``ttlMs``, and ``cacheScope: "private"`` if any page said so.
    """
    method, key, capability = LIST_KINDS[kind]
    if capability not in upstream.capabilities:
        return []
    try:
        return await _fetch_pages(upstream, method, key, timeout, hints)
    except RpcError as exc:
        if exc.code == METHOD_NOT_FOUND and kind in OPTIONAL_KINDS:
            return []
        raise


async def _fetch_pages(
    upstream: UpstreamSession, method: str, key: str, timeout: float,
    hints: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        result = await upstream.request(
            method, {"cursor": cursor} if cursor is not None else None, timeout)
        if hints is not None:
            _merge_hints(hints, result)
        page = result.get(key)
        if isinstance(page, list):
            items.extend(item for item in page if isinstance(item, dict))
        cursor = result.get("nextCursor")
        if not isinstance(cursor, str):
            return items
        if cursor in seen:
            raise RpcError(INTERNAL_ERROR, f"backend repeated cursor {cursor!r} in {method}")
        seen.add(cursor)
    raise RpcError(INTERNAL_ERROR, f"backend returned more than {_MAX_PAGES} pages for {method}")


def _merge_hints(hints: dict[str, Any], result: dict[str, Any]) -> None:
    ttl_ms = result.get("ttlMs")
    if isinstance(ttl_ms, int | float) and not isinstance(ttl_ms, bool):
        hints["ttlMs"] = min(ttl_ms, hints.get("ttlMs", ttl_ms))
    if result.get("cacheScope") == "private":
        hints["cacheScope"] = "private"
