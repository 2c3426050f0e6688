"""Approvals bound to the exact call: a persona's ``confirm_tools`` make the caller approve.

Before such a call is forwarded, the gateway asks the calling client with a form elicitation
that names the tool and shows its arguments. Only that request, with exactly the arguments
shown, is then forwarded; a call with other arguments is a new call and is asked again. A
client without form elicitation gets a clear refusal. Every decision is logged with the
call's digest (a hash of the exposed tool name and its canonical arguments).
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import RpcError
from vmcp.routing.request import HANDSHAKE, Request

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway
    from vmcp.routing.middleware import Caller

log = logging.getLogger("vmcp.approvals")

APPROVE_FIELD = "approve"


def call_digest(tool: str, arguments: Any) -> str:
    """A short digest naming one call: the tool and its canonical JSON arguments."""
    text = json.dumps({"tool": tool, "arguments": arguments}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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

    def needed(self, caller: Caller, mount_id: str, name: str) -> bool:
        """True when ``caller``'s persona has a ``confirm_tools`` pattern matching the tool."""
        access = self.gateway.access
        principal = caller.principal
        if access is None or principal is None or principal.persona is None:
            return False
        persona = access.policy.personas.get(principal.persona)
        rules = persona.servers.get(mount_id) if persona is not None else None
        return rules is not None and any(
            fnmatch.fnmatchcase(name, pattern) for pattern in rules.confirm_tools)

    def confirm_then(self, request: Request, exposed: str,
                     params: dict[str, Any], forward: Callable[[], None]) -> None:
        """Ask the caller about this call, then ``forward()`` it or answer with a refusal."""
        arguments = params.get("arguments") or {}
        digest = call_digest(exposed, arguments)
        sink, request_id = request.sink, request.id

        async def run() -> None:
            try:
                approved, why = await self._ask(request, exposed, arguments, digest)
                log.info("call %s of %s by session %s: %s", digest, exposed,
                         request.caller.session_id, why)
                if approved:
                    forward()
                else:
                    sink.deliver(request, jsonrpc.result(request_id, _refused(
                        f"The call of {exposed} was not run: {why}.")))
            except RpcError as exc:
                sink.fail(request_id, exc)
            finally:
                sink.tasks.pop(request_id, None)

        sink.tasks[request_id] = asyncio.get_running_loop().create_task(run())

    async def _ask(self, request: Request, exposed: str, arguments: Any,
                   digest: str) -> tuple[bool, str]:
        if not _can_ask(request):
            return False, ("it needs the caller's approval, and this client cannot be asked "
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
            return False, "the caller could not be asked (its client answered with an error)"
        content = result.get("content")
        if result.get("action") == "accept" and isinstance(content, dict) \
                and content.get(APPROVE_FIELD) is True:
            return True, "approved by the caller"
        return False, f"the caller did not approve it ({result.get('action', 'no answer')})"
