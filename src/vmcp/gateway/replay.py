"""Which front requests may be run a second time with no consequence (``[cluster]``).

A load balancer in front of several instances may send a request again on another instance
when the first one died before a byte of its response left (HAProxy's ``retry-on
empty-response``). The HTTP front asks :func:`replay_safe` of each request: a replay-safe one
keeps its response unstarted until it is done (so the balancer may run it again elsewhere);
any other has its response started before it runs (so once it may have had an effect, no
balancer repeats it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vmcp.gateway.overrides import shown_tools

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway

#: methods that change nothing a second run would change again
SAFE_METHODS = frozenset((
    "ping", "initialize", "server/discover", "tools/list", "prompts/list", "prompts/get",
    "resources/list", "resources/templates/list", "resources/read", "completion/complete",
    "logging/setLevel", "resources/subscribe", "resources/unsubscribe",
))


def replay_safe(gateway: Gateway, message: dict[str, Any]) -> bool:
    """Whether running request ``message`` twice does what running it once does: a
    :data:`SAFE_METHODS` request, or a ``tools/call`` of a tool its mount lists in
    ``read_only_tools`` or, on a trusted mount, annotates ``readOnlyHint`` or
    ``idempotentHint`` (as its overrides show it)."""
    method = message.get("method")
    if method in SAFE_METHODS:
        return True
    params = message.get("params")
    if method != "tools/call" or not isinstance(params, dict):
        return False
    route = gateway.namespace.tools.get(params.get("name"))  # type: ignore[arg-type]
    mount = gateway.mounts.get(route[0]) if route is not None else None
    if route is None or mount is None:
        return False
    config, name = mount.config, route[1]
    if name in config.read_only_tools:
        return True
    if not config.trusted:
        return False
    for tool in shown_tools(config.tools, mount.catalog["tools"]):
        if tool.get("name") == name:
            annotations = tool.get("annotations")
            return isinstance(annotations, dict) and (
                annotations.get("readOnlyHint") is True
                or annotations.get("idempotentHint") is True)
    return False
