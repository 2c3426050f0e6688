"""An HTTP session holds little while idle: thousands may be open at once (issue 22 wants at
most 8 KiB each, the aiohttp connection included, and 20 KiB for an active one)."""

from __future__ import annotations

import secrets
import tracemalloc

import pytest
from vmcp_transport_http.session import HttpSession

SESSIONS = 500

pytestmark = pytest.mark.anyio


def _session() -> HttpSession:
    return HttpSession(secrets.token_urlsafe(32), None, replay_buffer=256,
                       replay_bytes=1 << 20, retained_bytes=4 << 20,
                       on_rest=lambda _, __: None)


async def test_an_idle_session_that_was_answered_holds_under_1200_bytes() -> None:
    # (a session counts its POSTs' time as activity, which reads the running loop's clock)
    # (2,170 bytes with an instance dict, a GET stream's empty deque, an empty table of
    # ended streams, and the emptied tables of the requests it was answered)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        sessions = [_session() for _ in range(SESSIONS)]
        for session in sessions:
            post = session.open_post([1], sse=True)
            session.send({"jsonrpc": "2.0", "id": 1, "result": {}})
            post.stream.mark_delivered(1)
            session.settle(post)
        held = (tracemalloc.get_traced_memory()[0] - before) / SESSIONS
    finally:
        tracemalloc.stop()
    assert all(not session.in_flight([1]) for session in sessions)
    assert held < 1200
