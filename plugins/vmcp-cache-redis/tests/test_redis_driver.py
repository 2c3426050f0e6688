"""The ``redis`` driver on its own, against a real redis-server."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis
from vmcp_cache_redis.driver import RedisCache

from vmcp.cache.layer import CacheLayer
from vmcp.config import CacheSettings, MountConfig
from vmcp.plugins import load_driver
from vmcp.testing import RedisServer

pytestmark = pytest.mark.anyio


async def test_found_through_its_entry_point() -> None:
    assert load_driver("caches", "redis") is RedisCache


async def test_store_read_and_expiry(redis_server: RedisServer) -> None:
    cache = RedisCache(url=redis_server.url, namespace="t")
    raw = Redis.from_url(redis_server.url)
    try:
        assert await cache.get("k") is None
        await cache.set("k", b"v", 2.5)
        assert await cache.get("k") == b"v"
        assert 0 < await raw.pttl("t:k") <= 2500
        await cache.set("forever", b"v")
        assert await raw.pttl("t:forever") == -1
    finally:
        await raw.aclose()
        await cache.aclose()


async def test_namespaces_keep_deployments_apart(redis_server: RedisServer) -> None:
    one = RedisCache(url=redis_server.url, namespace="one")
    two = RedisCache(url=redis_server.url, namespace="two")
    try:
        await one.set("v1|m|x", b"1", 60)
        await two.set("v1|m|x", b"2", 60)
        assert await one.get("v1|m|x") == b"1"
        assert await one.delete_prefix("v1|m|") == 1
        assert await one.get("v1|m|x") is None
        assert await two.get("v1|m|x") == b"2"
    finally:
        await one.aclose()
        await two.aclose()


async def test_delete_prefix_takes_glob_characters_literally(redis_server: RedisServer) -> None:
    cache = RedisCache(url=redis_server.url, namespace="t")
    try:
        keys = ["v1|m|a*[x]?|1", "v1|m|ab|2", "v1|m|a*[x]?|3"] + [f"v1|n|{i}" for i in range(1200)]
        for key in keys:
            await cache.set(key, b"v", 60)
        assert await cache.delete_prefix("v1|m|a*[x]?|") == 2
        assert await cache.get("v1|m|ab|2") == b"v"
        assert await cache.delete_prefix("v1|n|") == 1200  # more than one SCAN/UNLINK batch
    finally:
        await cache.aclose()


async def test_huge_values_are_not_stored(redis_server: RedisServer) -> None:
    cache = RedisCache(url=redis_server.url, namespace="t", max_value_bytes=10)
    try:
        await cache.set("small", b"0123456789", 60)
        await cache.set("big", b"0123456789!", 60)
        assert await cache.get("small") == b"0123456789"
        assert await cache.get("big") is None
    finally:
        await cache.aclose()


async def test_published_messages_reach_the_other_subscribers(redis_server: RedisServer) -> None:
    sender = RedisCache(url=redis_server.url, namespace="t")
    receiver = RedisCache(url=redis_server.url, namespace="t")
    elsewhere = RedisCache(url=redis_server.url, namespace="other")
    got: list[bytes] = []
    arrived = asyncio.Event()

    def handler(message: bytes) -> None:
        got.append(message)
        arrived.set()

    try:
        await receiver.subscribe(handler)
        await elsewhere.subscribe(handler)
        with anyio.fail_after(5):
            await sender.publish(b"hello")
            await arrived.wait()
        assert got == [b"hello"]
    finally:
        for cache in (sender, receiver, elsewhere):
            await cache.aclose()


def mount(**settings: Any) -> MountConfig:
    """A mount configuration (the layer only reads its settings)."""
    return MountConfig(id="m", command="backend", **settings)


async def test_two_layers_share_entries_and_invalidations(redis_server: RedisServer) -> None:
    settings = CacheSettings(backend="redis")
    a = CacheLayer(RedisCache(url=redis_server.url, namespace="t"), settings, 10)
    b = CacheLayer(RedisCache(url=redis_server.url, namespace="t"), settings, 10)
    heard: list[tuple[str, tuple[str, ...]]] = []
    changed = asyncio.Event()

    def on_lists_changed(mount_id: str, kinds: tuple[str, ...]) -> None:
        heard.append((mount_id, kinds))
        changed.set()

    m = mount(cache_tools=["*"])
    calls = 0

    async def fetch() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"content": [{"type": "text", "text": f"#{calls}"}]}

    params = {"name": "lookup", "arguments": {}}
    try:
        await a.start(lambda *_: None)
        await b.start(on_lists_changed)
        with anyio.fail_after(5):
            assert await a.call(m, "tools/call", params, "dev", 60, fetch) == await b.call(
                m, "tools/call", params, "dev", 60, fetch)
            assert calls == 1
            await a.lists_changed("m", ("tools",))
            await changed.wait()
        assert heard == [("m", ("tools",))]
        await b.call(m, "tools/call", params, "dev", 60, fetch)
        assert calls == 2  # a's invalidation dropped the shared entry
    finally:
        await a.aclose()
        await b.aclose()


async def test_losing_redis_degrades_to_no_caching(redis_server: RedisServer) -> None:
    backend = RedisCache(url=redis_server.url, namespace="t", reconnect_interval=0.05)
    cache = CacheLayer(backend, CacheSettings(backend="redis", retry_interval=0), 10)
    m = mount(cache_tools=["*"])
    calls = 0

    async def fetch() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"content": [], "n": calls}

    params = {"name": "lookup"}
    try:
        await cache.start(lambda *_: None)
        with anyio.fail_after(10):
            assert (await cache.call(m, "tools/call", params, None, 60, fetch))["n"] == 1
            assert (await cache.call(m, "tools/call", params, None, 60, fetch))["n"] == 1
            redis_server.stop()
            assert (await cache.call(m, "tools/call", params, None, 60, fetch))["n"] == 2
            assert (await cache.call(m, "tools/call", params, None, 60, fetch))["n"] == 3
            await cache.lists_changed("m", ("tools",))  # cannot reach Redis: no error either
            assert cache.counters.errors >= 2
            redis_server.start()  # an empty Redis on the same port: caching resumes
            assert (await cache.call(m, "tools/call", params, None, 60, fetch))["n"] == 4
            assert (await cache.call(m, "tools/call", params, None, 60, fetch))["n"] == 4
    finally:
        await cache.aclose()
