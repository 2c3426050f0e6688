"""What both era adapters do with a request once it is built: resolve names and URIs through
the namespace (as the caller may see it) and hand routed requests to the router.

Lists are answered from the namespace snapshot; ``tools/call``, ``prompts/get``,
``resources/read`` and ``completion/complete`` go to the one mount that owns the name or URI,
with the backend's name or URI put in. Every function raises :class:`RpcError` for a request
that cannot be served; the adapter answers it in its era.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from vmcp.gateway.paging import page
from vmcp.protocol.errors import INVALID_PARAMS, RESOURCE_NOT_FOUND, RpcError
from vmcp.routing.middleware import Caller
from vmcp.routing.request import Request

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway

#: list method -> (namespace list kind, result key)
LIST_METHODS = {
    "tools/list": ("tools", "tools"),
    "prompts/list": ("prompts", "prompts"),
    "resources/list": ("resources", "resources"),
    "resources/templates/list": ("resource_templates", "resourceTemplates"),
}


class Dispatcher:
    """Resolves and routes the requests of one gateway, for every adapter."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    # -- lists ----------------------------------------------------------------------------

    def list_page(self, caller: Caller, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One page of an aggregated list, as ``caller`` may see it."""
        kind, key = LIST_METHODS[method]
        gateway = self.gateway
        ns = gateway.namespace
        items = {
            "tools": ns.tool_list,
            "prompts": ns.prompt_list,
            "resources": ns.resource_list,
            "resource_templates": ns.template_list,
        }[kind]
        visible = gateway.visible
        if visible is not None:
            label = kind.removesuffix("s")
            items = [
                item for item, (mount_id, name) in zip(items, ns.list_routes[kind], strict=True)
                if visible(caller, mount_id, label, name)
            ]
        if kind == "tools":
            items = gateway.tool_search.shown(caller, items)
        return page(kind, key, items, params.get("cursor"), gateway.config.gateway.page_size)

    def list_is_stale(self, method: str) -> bool:
        """True when some mount's list must be re-read before ``method`` is answered."""
        return self.gateway.stale_kinds(LIST_METHODS[method][0])

    async def fresh_list_page(self, caller: Caller, method: str,
                              params: dict[str, Any]) -> dict[str, Any]:
        """Re-read what is stale, then answer the page."""
        await self.gateway.refresh_stale(LIST_METHODS[method][0])
        return self.list_page(caller, method, params)

    # -- names and URIs -------------------------------------------------------------------

    def visible(self, caller: Caller, mount_id: str, kind: str, name: str) -> bool:
        """True when ``caller`` may see (and so use) the item."""
        visible = self.gateway.visible
        return visible is None or visible(caller, mount_id, kind, name)

    def named_route(self, caller: Caller, params: dict[str, Any],
                    kind: str) -> tuple[str, dict[str, Any]]:
        """The mount owning a tool or prompt name, and the params with the backend's name."""
        name = params.get("name")
        gateway = self.gateway
        ns = gateway.namespace
        names = ns.tools if kind == "tool" else ns.prompts
        route = names.get(name) if isinstance(name, str) else None
        if route is None and kind == "tool" and ns.unlisted and isinstance(name, str):
            route = ns.unlisted_route(name)
        visible = gateway.visible  # self.visible(), inline: the hot path
        if route is None or (visible is not None
                             and not visible(caller, route[0], kind, route[1])):
            raise RpcError(INVALID_PARAMS, f"Unknown {kind}: {name}")
        mount_id, original = route
        return mount_id, params if original == name else {**params, "name": original}

    def resource_route(self, caller: Caller, uri: Any) -> tuple[str, str]:
        """The mount owning a front URI, and the backend's URI."""
        route = self.gateway.namespace.route_uri(uri) if isinstance(uri, str) else None
        if route is None or not self.visible(caller, route[0], "resource", route[1]):
            raise RpcError(RESOURCE_NOT_FOUND, f"Resource not found: {uri}", {"uri": uri})
        return route

    # -- routed requests ------------------------------------------------------------------

    def tools_call(self, request: Request, params: dict[str, Any]) -> None:
        """Route ``tools/call`` (the search meta-tools and approvals first)."""
        gateway = self.gateway
        exposed = params.get("name")
        if exposed in gateway.tool_search.meta_names:
            taken = gateway.tool_search.take(request, params)
            if taken is None:
                return
            params = taken
            exposed = params.get("name")
        arguments = params.get("arguments")
        if arguments is not None and not isinstance(arguments, dict):
            raise RpcError(INVALID_PARAMS, "tools/call arguments must be an object")
        mount_id, params = self.named_route(request.caller, params, "tool")
        if gateway.approvals.needed(request.caller, mount_id, params["name"]):
            gateway.approvals.confirm_then(
                request, exposed, mount_id, params,
                partial(self._route_or_fail, request, mount_id, "tools/call", params))
            return
        gateway.router.route(request, mount_id, "tools/call", params, gateway.map_tool_result)

    def _route_or_fail(self, request: Request, mount_id: str, method: str,
                       params: dict[str, Any]) -> None:
        try:
            self.gateway.router.route(request, mount_id, method, params,
                                      self.gateway.map_tool_result)
        except RpcError as exc:
            request.sink.fail(request.id, exc)

    def prompts_get(self, request: Request, params: dict[str, Any]) -> None:
        """Route ``prompts/get``."""
        mount_id, params = self.named_route(request.caller, params, "prompt")
        self.gateway.router.route(request, mount_id, "prompts/get", params,
                                  self.gateway.map_prompt_result)

    def resources_read(self, request: Request, params: dict[str, Any]) -> None:
        """Route ``resources/read``."""
        mount_id, uri = self.resource_route(request.caller, params.get("uri"))
        if uri != params["uri"]:
            params = {**params, "uri": uri}
        self.gateway.router.route(request, mount_id, "resources/read", params,
                                  self.gateway.map_read_result)

    def complete(self, request: Request, params: dict[str, Any]) -> None:
        """Route ``completion/complete`` to the mount of its prompt or resource."""
        ref = params.get("ref")
        caller = request.caller
        ns = self.gateway.namespace
        route: tuple[str, str] | None = None
        if isinstance(ref, dict) and ref.get("type") == "ref/prompt":
            name = ref.get("name")
            route = ns.prompts.get(name) if isinstance(name, str) else None
            if route is not None and self.visible(caller, route[0], "prompt", route[1]):
                params = {**params, "ref": {**ref, "name": route[1]}}
            else:
                raise RpcError(INVALID_PARAMS, f"Unknown prompt: {name}")
        elif isinstance(ref, dict) and ref.get("type") == "ref/resource":
            uri = ref.get("uri")
            owner = ns.template_owner.get(uri) if isinstance(uri, str) else None
            if owner is not None and self.visible(caller, owner, "resource_template", uri):
                route = (owner, uri)  # type: ignore[assignment]
            else:
                route = self.resource_route(caller, uri)
                params = {**params, "ref": {**ref, "uri": route[1]}}
        else:
            raise RpcError(INVALID_PARAMS, "completion ref must be ref/prompt or ref/resource")
        self.gateway.router.route(request, route[0], "completion/complete", params, None)
