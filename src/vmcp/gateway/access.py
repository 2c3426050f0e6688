"""Persona enforcement in the running gateway: the visibility filter and live reloading.

:class:`PersonaAccess` turns the persona store into the gateway's built-in visibility filter.
It exists only when a persona can be in play (a default persona, ``vmcp start --persona``,
or an auth driver whose principals carry personas); otherwise the gateway's ``visible``
stays None and routed calls pay nothing.

A caller whose principal has no persona has full access. The gateway gives every session
its effective principal when it opens (``[gateway] default_persona`` filled in), so
``caller.principal.persona`` is the one key that decides access, and caches key on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from vmcp.auth.base import Principal
from vmcp.config import VmcpConfig
from vmcp.gateway.overrides import shown_tools
from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import RpcError
from vmcp.routing.middleware import Caller

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway
    from vmcp.gateway.session import FrontSession
    from vmcp.persona import PersonaStore

log = logging.getLogger("vmcp.persona")

#: seconds between two looks at the personas folder
POLL_INTERVAL = 1.0
#: the lists a persona change can alter
_LIST_KINDS = ("tools", "prompts", "resources")


def personas_in_play(config: VmcpConfig, default_principal: Principal | None) -> bool:
    """True when some connection may carry a persona, so the filter must be installed."""
    return bool(
        config.gateway.default_persona
        or (default_principal is not None and default_principal.persona)
        or config.auth.driver != "none"
    )


def read_only_tools(config_tools: list[str], trusted: bool, tools: list[dict[str, object]]
                    ) -> frozenset[str]:
    """The read-only tools of one mount: those its config lists, plus, when the mount is
    trusted, those the server annotates with ``readOnlyHint: true``."""
    names = set(config_tools)
    if trusted:
        for tool in tools:
            annotations = tool.get("annotations")
            if isinstance(annotations, dict) and annotations.get("readOnlyHint") is True:
                names.add(str(tool.get("name")))
    return frozenset(names)


class PersonaAccess:
    """The persona policy of one gateway, kept current with the personas folder."""

    def __init__(self, gateway: Gateway, store: PersonaStore) -> None:
        from vmcp.persona import Policy

        self.gateway = gateway
        self.store = store
        self._fingerprint = store.fingerprint()
        personas, problems = store.load_all()
        for problem in problems:
            log.error("persona file ignored, that persona sees nothing: %s", problem)
        self.policy = Policy(personas)

    # -- the filter (hot path) -------------------------------------------------------------

    def visible(self, caller: Caller, mount_id: str, kind: str, name: str) -> bool:
        """The gateway visibility filter: full access without a persona, else the policy."""
        principal = caller.principal
        if principal is None or principal.persona is None:
            return True
        return self.policy.visible(principal.persona, mount_id, kind, name)

    def sees_mount(self, caller: Caller, mount_id: str) -> bool:
        """True when the caller may know of ``mount_id`` at all (for relayed notifications)."""
        principal = caller.principal
        if principal is None or principal.persona is None:
            return True
        return self.policy.sees_server(principal.persona, mount_id)

    # -- keeping current --------------------------------------------------------------------

    def catalog_changed(self) -> None:
        """Recompute every mount's read-only tools (after the namespace was rebuilt)."""
        self.policy.read_only_tools = {
            mount_id: read_only_tools(
                mount.config.read_only_tools, mount.config.trusted,
                shown_tools(mount.config.tools, mount.catalog["tools"]))
            for mount_id, mount in self.gateway.mounts.items()
        }

    async def watch(self) -> None:
        """Poll the personas folder until cancelled; apply every change at once."""
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            fingerprint = self.store.fingerprint()
            if fingerprint != self._fingerprint or None in fingerprint.values():
                self._fingerprint = fingerprint
                try:
                    await self.reload()
                except Exception:
                    log.exception("reloading personas failed; the previous ones stay in force")

    async def reload(self) -> None:
        """Re-read the personas, swap the policy, and tell affected sessions."""
        old = self.policy.personas
        personas, problems = self.store.load_all()
        for problem in problems:
            name = problem.path.name.removesuffix(".json")
            if name in old:
                log.error("persona %s: the file is invalid, the previous version stays in "
                          "force: %s", name, problem)
                personas[name] = old[name]
            else:
                log.error("persona file ignored, that persona sees nothing: %s", problem)
        changed = {name for name in old.keys() | personas.keys()
                   if old.get(name) != personas.get(name)}
        if not changed:
            return
        from vmcp.persona import Policy

        policy = Policy(personas)
        policy.read_only_tools = self.policy.read_only_tools
        self.policy = policy
        log.info("personas changed: %s", ", ".join(sorted(changed)))
        for session in list(self.gateway.sessions.values()):
            principal = session.caller.principal
            if principal is not None and principal.persona in changed:
                await self._persona_changed(session)

    async def _persona_changed(self, session: FrontSession) -> None:
        gateway = self.gateway
        for route in list(session.subscriptions):
            if not self.visible(session.caller, route[0], "resource", route[1]):
                with contextlib.suppress(RpcError):
                    await gateway.unsubscribe(session, route)
        if not session.initialized:
            return
        offered = gateway.front_capabilities()
        for kind in _LIST_KINDS:
            if kind in offered:
                session.send(jsonrpc.notification(f"notifications/{kind}/list_changed"))
