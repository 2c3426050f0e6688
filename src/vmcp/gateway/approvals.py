"""Approvals bound to the exact call: a persona's ``confirm_tools`` make the caller approve.

``confirm_destructive`` (of a persona, or of one of its servers) adds every tool that may be
destructive: every one but its mount's :func:`harmless_tools` (so a tool the mount does not
list, forwarded by ``unlisted_tools = "forward"``, is one).

Before such a call is forwarded, the gateway asks the calling client with a form elicitation
that names the tool and shows its arguments. Only that request, with exactly the arguments
shown, is then forwarded; a call with other arguments is a new call and is asked again. A
client without form elicitation gets a clear refusal. Every decision is logged with the
call's digest (a hash of the exposed tool name and its canonical arguments), and reaches the
request middleware with the call (the audit trail records it).
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import json
import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from vmcp.gateway.overrides import shown_tools
from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import RpcError
from vmcp.registry.mount import Mount
from vmcp.routing.request import HANDSHAKE, Request
from vmcp.routing.router import routed_request

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway
    from vmcp.gateway.namespace import Namespace
    from vmcp.routing.middleware import Caller, RoutedRequest

log = logging.getLogger("vmcp.approvals")

APPROVE_FIELD = "approve"
#: the decisions a call needing approval can get (what the audit trail records)
APPROVED, DECLINED, UNASKED = "approved", "declined", "unasked"


def call_digest(tool: str, arguments: Any) -> str:
    """A short digest naming one call: the tool and its canonical JSON arguments."""
    text = json.dumps({"tool": tool, "arguments": arguments}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def harmless_tools(mount: Mount) -> frozenset[str]:
    """The backend names of ``mount``'s tools that cannot be destructive.

    Those its ``read_only_tools`` setting lists, and on a trusted mount the listed tools whose
    annotations (as its overrides show them) say so by the MCP rules: ``readOnlyHint`` true or
    ``destructiveHint`` false. An untrusted mount's annotations are not believed.
    """
    config = mount.config
    names = set(config.read_only_tools)
    if config.trusted:
        for tool in shown_tools(config.tools, mount.catalog["tools"]):
            name, annotations = tool.get("name"), tool.get("annotations")
            if isinstance(name, str) and isinstance(annotations, dict) and (
                    annotations.get("readOnlyHint") is True
                    or annotations.get("destructiveHint") is False):
                names.add(name)
    return frozenset(names)


async def _answer(result: dict[str, Any], routed: RoutedRequest) -> dict[str, Any]:
    """The innermost step of the chain for a call not approved: the refusal, no backend."""
    return result


def _refused(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True}


def _can_ask(request: Request) -> bool:
    # a 2026-07-28 client can only be asked through input_required, which needs its retry
    elicitation = request.capabilities.get("elicitation")
    return request.era == HANDSHAKE and isinstance(elicitation, dict) and (
        not elicitation or "form" in elicitation)


class Approvals:
    """Which calls need the caller's approval, and the asking."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        #: mount id -> its harmless tools, for the namespace they were computed from
        self._harmless: dict[str, frozenset[str]] = {}
        self._harmless_of: Namespace | None = None

    def needed(self, caller: Caller, mount_id: str, name: str) -> bool:
        """True when ``caller``'s persona has a ``confirm_tools`` pattern matching the tool,
        or confirms destructive tools on that mount and this one may be."""
        access = self.gateway.access
        principal = caller.principal
        if access is None or principal is None or principal.persona is None:
            return False
        persona = access.policy.personas.get(principal.persona)
        rules = persona.servers.get(mount_id) if persona is not None else None
        if persona is None or rules is None:
            return False
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in rules.confirm_tools):
            return True
        return (rules.confirm_destructive or persona.confirm_destructive) \
            and name not in self._harmless_tools(mount_id)

    def _harmless_tools(self, mount_id: str) -> frozenset[str]:
        gateway = self.gateway
        if self._harmless_of is not gateway.namespace:
            self._harmless, self._harmless_of = {}, gateway.namespace
        found = self._harmless.get(mount_id)
        if found is None:
            mount = gateway.mounts.get(mount_id)
            found = harmless_tools(mount) if mount is not None else frozenset()
            self._harmless[mount_id] = found
        return found

    def confirm_then(self, request: Request, exposed: str, mount_id: str,
                     params: dict[str, Any], forward: Callable[[], None]) -> None:
        """Ask the caller about this call, then ``forward()`` it or answer with a refusal.

        The decision goes with the call (``request.approval``), so the request middleware
        (the audit trail, traces) records it; a call not approved passes through the
        middleware chain too, answered with the refusal instead of by the backend.
        """
        arguments = params.get("arguments") or {}
        digest = call_digest(exposed, arguments)
        sink, request_id = request.sink, request.id

        async def run() -> None:
            try:
                decision, why = await self._ask(request, exposed, arguments, digest)
                log.info("call %s of %s by session %s: %s", digest, exposed,
                         request.caller.session_id, why)
                request.approval = decision
                if decision == APPROVED:
                    forward()
                    return
                refusal = _refused(f"The call of {exposed} was not run: {why}.")
                middleware = self.gateway.middleware
                if middleware is not None:
                    refusal = await middleware(
                        routed_request(request, mount_id, "tools/call", params),
                        partial(_answer, refusal))
                sink.deliver(request, jsonrpc.result(request_id, refusal))
            except RpcError as exc:
                sink.fail(request_id, exc)
            finally:
                if sink.tasks.get(request_id) is task:  # not the one forward() started
                    del sink.tasks[request_id]

        task = sink.tasks[request_id] = asyncio.get_running_loop().create_task(run())

    async def _ask(self, request: Request, exposed: str, arguments: Any,
                   digest: str) -> tuple[str, str]:
        """The caller's decision (``approved``, ``declined`` or ``unasked``) and why."""
        if not _can_ask(request):
            return UNASKED, ("it needs the caller's approval, and this client cannot be asked "
                           "(it does not support form elicitation)")
        shown = json.dumps(arguments, indent=2, sort_keys=True, ensure_ascii=False)
        answer = await request.sink.ask("elicitation/create", {  # type: ignore[attr-defined]
            "mode": "form",
            "message": f"Allow this call of the tool {exposed}?\n\nArguments:\n{shown}\n\n"
                       f"(call {digest})",
            "requestedSchema": {
                "type": "object",
                "properties": {APPROVE_FIELD: {
                    "type": "boolean", "title": f"Run {exposed} with these arguments"}},
                "required": [APPROVE_FIELD],
            },
        })
        result = answer.get("result")
        if not isinstance(result, dict):
            return UNASKED, "the caller could not be asked (its client answered with an error)"
        content = result.get("content")
        if result.get("action") == "accept" and isinstance(content, dict) \
                and content.get(APPROVE_FIELD) is True:
            return APPROVED, "approved by the caller"
        return DECLINED, f"the caller did not approve it ({result.get('action', 'no answer')})"
