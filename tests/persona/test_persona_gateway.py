"""Persona enforcement switched on by a configuration reload, not only at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmcp.auth.base import Principal
from vmcp.config import VmcpConfig
from vmcp.gateway.gateway import Gateway
from vmcp.persona import PersonaStore

pytestmark = pytest.mark.anyio


class Peer:
    """A front peer that keeps what it is sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []

    def send(self, message: dict[str, object], related_to: object = None) -> None:
        """Keep one message."""
        self.sent.append(message)


async def test_reload_that_sets_a_default_persona_installs_the_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMCP_HOME", str(tmp_path))
    PersonaStore.default().create("guest")
    gateway = Gateway(VmcpConfig())
    assert gateway.access is None and gateway.visible is None  # nothing configured: no cost
    try:
        await gateway.apply_config(
            VmcpConfig.model_validate({"gateway": {"default_persona": "guest"}}))
        assert gateway.access is not None and gateway.visible is not None
        session = gateway.open_session(Peer())
        assert session.caller.persona == "guest"
        assert not gateway.visible(session.caller, "any", "tool", "x")  # a new persona: nothing
        assert gateway.open_session(Peer(), Principal("t", None)).caller.persona == "guest"
    finally:
        await gateway.stop()
