"""The ``redis`` cluster driver against a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
from vmcp_cluster_redis.driver import RedisSharedState

from vmcp.cluster import SessionRecord
from vmcp.testing import RedisServer

pytestmark = pytest.mark.anyio


def _state(server: RedisServer, instance: str) -> RedisSharedState:
    return RedisSharedState(url=server.url, instance=instance, prefix="t",
                            heartbeat_interval=0.2, timeout=0.5)


def _record(session_id: str = "a.xyz") -> SessionRecord:
    return SessionRecord(session_id, "a", "alice", "dev", "2025-06-18", {"sampling": {}},
                         {"name": "c"}, "info", [("notes", "note://1")], 1.0)


async def test_a_record_is_saved_loaded_touched_and_ended(redis_server: RedisServer) -> None:
    state = _state(redis_server, "a")
    try:
        await state.save_session(_record(), ttl=30)
        loaded = await state.load_session("a.xyz")
        assert loaded == _record()
        assert await state.touch_session("a.xyz", ttl=30) is True
        assert await state.touch_session("a.other", ttl=30) is False
        await state.end_session("a.xyz", ttl=30)
        assert await state.load_session("a.xyz") is None
        assert await state.touch_session("a.xyz", ttl=30) is None  # ended: never written back
    finally:
        await state.aclose()


async def test_a_record_expires_with_its_ttl(redis_server: RedisServer) -> None:
    state = _state(redis_server, "a")
    try:
        await state.save_session(_record(), ttl=0.05)
        await asyncio.sleep(0.2)  # Redis expires the key on its own clock
        assert await state.load_session("a.xyz") is None
    finally:
        await state.aclose()


async def test_events_resume_after_an_id_on_another_instance(redis_server: RedisServer) -> None:
    a, b = _state(redis_server, "a"), _state(redis_server, "b")
    try:
        await a.save_session(_record(), ttl=30)
        ids = await a.append_events("a.xyz", [{"n": 1}, {"n": 2}, {"n": 3}], ttl=30)
        assert ids == sorted(ids)
        assert [m for _, m in await b.read_events("a.xyz", None, 0.1)] == [
            {"n": 1}, {"n": 2}, {"n": 3}]
        await b.delivered("a.xyz", ids[0])
        assert [m for _, m in await a.read_events("a.xyz", None, 0.1)] == [{"n": 2}, {"n": 3}]
        assert [m for _, m in await a.read_events("a.xyz", ids[1], 0.1)] == [{"n": 3}]
        waiting = asyncio.ensure_future(b.read_events("a.xyz", ids[2], 2))
        await asyncio.sleep(0.05)
        await a.append_events("a.xyz", [{"n": 4}], ttl=30)
        assert [m for _, m in await waiting] == [{"n": 4}]
    finally:
        await a.aclose()
        await b.aclose()


async def test_messages_reach_one_instance_or_all(redis_server: RedisServer) -> None:
    a, b = _state(redis_server, "a"), _state(redis_server, "b")
    got_a: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    got_b: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    a.listen(got_a.put_nowait)
    b.listen(got_b.put_nowait)
    try:
        await a.start()
        await b.start()
        await a.publish("b", {"to": "b"})
        await a.publish(None, {"to": "all"})
        assert await got_b.get() == {"to": "b"}
        assert await got_b.get() == {"to": "all"}
        # Redis delivers in publish order: had "to b" reached a, it would have come first
        assert await got_a.get() == {"to": "all"}
        assert got_a.empty()
        b.session_count = lambda: 7
        names = {info.instance: info.sessions for info in await a.instances()}
        assert names["a"] == 0 and names["b"] in (0, 7)
    finally:
        await a.aclose()
        await b.aclose()
    assert await _state(redis_server, "c").instances() == []


async def test_losing_redis_is_reported_and_recovered(redis_server: RedisServer) -> None:
    state = _state(redis_server, "a")
    try:
        await state.start()
        assert state.problem() is None
        redis_server.stop()
        for _ in range(50):
            if state.problem() is not None:
                break
            await asyncio.sleep(0.1)
        assert "Redis unreachable" in str(state.problem())
        redis_server.start()
        for _ in range(50):
            if state.problem() is None:
                break
            await asyncio.sleep(0.1)
        assert state.problem() is None
    finally:
        await state.aclose()
