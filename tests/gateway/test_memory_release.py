"""The gateway asks for the memory release once its sessions are gone, and not when told not
to (``[gateway] release_memory = false``)."""

from __future__ import annotations

from typing import Any

import pytest

from vmcp.config import VmcpConfig
from vmcp.gateway.gateway import Gateway
from vmcp.memrelease import MIN_PEAK

pytestmark = pytest.mark.anyio


class Peer:
    """A front connection that drops what it is sent."""

    def send(self, message: dict[str, Any], related_to: Any = None) -> None:
        """Drop the message."""


async def test_the_release_is_asked_for_once_the_sessions_are_gone() -> None:
    gateway = Gateway(VmcpConfig())
    assert gateway.memory is not None
    sessions = [gateway.open_session(Peer()) for _ in range(MIN_PEAK + 1)]
    try:
        for session in sessions[:MIN_PEAK // 2]:
            await session.aclose()
        assert gateway.memory.due is None  # half of the peak: a load still there
        for session in sessions[MIN_PEAK // 2:]:
            await session.aclose()
        assert not gateway.sessions
        assert gateway.memory.due is not None
    finally:
        gateway.memory.close()


def test_release_memory_false_turns_it_off() -> None:
    assert Gateway(VmcpConfig(gateway={"release_memory": False})).memory is None
