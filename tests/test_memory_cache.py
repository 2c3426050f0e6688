"""The built-in ``memory`` cache: TTL, LRU bounds by entries and bytes, prefix deletion."""

from __future__ import annotations

import pytest

from vmcp.cache.memory import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, MemoryCache
from vmcp.testing import ManualClock

pytestmark = pytest.mark.anyio


async def test_get_returns_what_was_set_and_counts() -> None:
    cache = MemoryCache()
    assert await cache.get("k") is None
    await cache.set("k", b"value")
    assert await cache.get("k") == b"value"
    assert (cache.stats.hits, cache.stats.misses, cache.stats.evictions) == (1, 1, 0)
    assert cache.max_entries == DEFAULT_MAX_ENTRIES
    assert cache.max_bytes == DEFAULT_MAX_BYTES


async def test_entry_expires_after_its_ttl() -> None:
    clock = ManualClock()
    cache = MemoryCache(clock=clock)
    await cache.set("short", b"1", ttl=10)
    await cache.set("forever", b"2")
    clock.now += 9.9
    assert await cache.get("short") == b"1"
    clock.now += 0.1
    assert await cache.get("short") is None
    assert cache.stats.expirations == 1
    assert len(cache) == 1
    clock.now += 1e9
    assert await cache.get("forever") == b"2"


async def test_setting_again_replaces_value_and_ttl() -> None:
    clock = ManualClock()
    cache = MemoryCache(clock=clock)
    await cache.set("k", b"old", ttl=1)
    await cache.set("k", b"new!", ttl=100)
    clock.now += 50
    assert await cache.get("k") == b"new!"
    assert cache.size_bytes == len("k") + len(b"new!")


async def test_least_recently_used_is_evicted_by_entry_count() -> None:
    cache = MemoryCache(max_entries=2)
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    assert await cache.get("a") == b"1"  # now "b" is the least recently used
    await cache.set("c", b"3")
    assert await cache.get("b") is None
    assert await cache.get("a") == b"1"
    assert await cache.get("c") == b"3"
    assert cache.stats.evictions == 1


async def test_eviction_keeps_bytes_within_bound() -> None:
    cache = MemoryCache(max_bytes=30)
    for key in ("k1", "k2", "k3"):
        await cache.set(key, b"x" * 8)  # 10 bytes each with the key
    assert cache.size_bytes == 30
    await cache.set("k4", b"x" * 18)  # 20 bytes: two oldest must go
    assert cache.size_bytes == 30
    assert [await cache.get(k) is not None for k in ("k1", "k2", "k3", "k4")] == [
        False,
        False,
        True,
        True,
    ]
    assert cache.stats.evictions == 2


async def test_value_larger_than_the_bound_is_not_stored() -> None:
    cache = MemoryCache(max_bytes=10)
    await cache.set("k", b"small")
    await cache.set("k", b"far too large for it")
    assert await cache.get("k") is None
    assert cache.size_bytes == 0


async def test_delete_prefix() -> None:
    cache = MemoryCache()
    for key in ("p1/tools", "p1/prompts", "p2/tools", "p10/tools"):
        await cache.set(key, b"v")
    assert await cache.delete_prefix("p1/") == 2
    assert await cache.get("p1/tools") is None
    assert await cache.get("p10/tools") == b"v"
    assert await cache.get("p2/tools") == b"v"
    assert await cache.delete_prefix("nothing") == 0
    assert cache.size_bytes == len("p2/tools") + len("p10/tools") + 2


async def test_settings_are_kept_and_checked() -> None:
    cache = MemoryCache(max_entries=5, backend="memory", ttl=30.0)
    assert cache.settings == {
        "max_entries": 5,
        "max_bytes": DEFAULT_MAX_BYTES,
        "backend": "memory",
        "ttl": 30.0,
    }
    with pytest.raises(ValueError, match="max_entries"):
        MemoryCache(max_entries=0)
    with pytest.raises(ValueError, match="max_bytes"):
        MemoryCache(max_bytes=0)
    await cache.aclose()
