"""The cache layer over the built-in ``memory`` driver: keys, rules, counters, invalidation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from vmcp.cache.keys import canonical_params, entry_key, fingerprint
from vmcp.cache.layer import CacheLayer
from vmcp.cache.memory import MemoryCache
from vmcp.config import CacheSettings, MountConfig, VmcpConfig
from vmcp.plugins import DriverNotFound

pytestmark = pytest.mark.anyio


def mount(**settings: Any) -> MountConfig:
    """A mount configuration (never started: the layer only reads its settings)."""
    return MountConfig(id=settings.pop("id", "m"), command="backend", **settings)


def layer(backend: Any = None, list_ttl: float = 10.0, **settings: Any) -> CacheLayer:
    """A layer over ``backend`` (default: a fresh memory cache)."""
    return CacheLayer(MemoryCache() if backend is None else backend, CacheSettings(**settings),
                      list_ttl)


class Backend:
    """Stands for a backend server: answers with ``result``, counting the requests."""

    def __init__(self, result: Callable[[int], dict[str, Any]] | None = None) -> None:
        self.calls = 0
        self.result = result or (lambda n: {"content": [{"type": "text", "text": f"#{n}"}]})

    async def __call__(self) -> dict[str, Any]:
        """One request."""
        self.calls += 1
        return self.result(self.calls)


LOOKUP = {"name": "lookup", "arguments": {"key": "k"}}


async def test_second_identical_call_is_a_hit() -> None:
    cache, backend = layer(), Backend()
    m = mount(cache_tools=["look*"])
    ttl = cache.request_ttl(m, "tools/call", LOOKUP)
    assert ttl == 300.0
    first = await cache.call(m, "tools/call", LOOKUP, None, ttl, backend)
    second = await cache.call(m, "tools/call", {"arguments": {"key": "k"}, "name": "lookup"},
                              None, ttl, backend)
    assert first == second == {"content": [{"type": "text", "text": "#1"}]}
    assert second is not first  # a hit is a fresh copy the caller may map in place
    other = await cache.call(m, "tools/call", {**LOOKUP, "arguments": {"key": "j"}}, None, ttl,
                             backend)
    assert other["content"][0]["text"] == "#2"
    assert backend.calls == 2
    assert cache.snapshot() == {"hits": 1, "misses": 2, "stores": 2, "bypassed": 0,
                                "errors": 0, "invalidations": 0, "evictions": 0}


async def test_entries_never_cross_personas_unless_public() -> None:
    cache, backend = layer(), Backend()
    private, public = mount(id="p", cache_tools=["*"]), mount(id="q", cache_tools=["*"],
                                                              cache_public=True)
    for m in (private, public):
        for persona in ("dev", "ops", None, "dev"):
            await cache.call(m, "tools/call", LOOKUP, persona, 60, backend)
    # private: dev, ops and no persona each miss once, dev's second call hits; public: one miss
    assert backend.calls == 3 + 1
    assert cache.counters.hits == 1 + 3


@pytest.mark.parametrize(
    "result",
    [
        {"content": [], "isError": True},
        {"resultType": "input_required", "inputRequests": {}},
        {"task": {"taskId": "t1", "status": "working"}},
        {"content": [], "ttlMs": 0},
    ],
    ids=["isError", "input_required", "task", "ttlMs-0"],
)
async def test_results_that_are_never_stored(result: dict[str, Any]) -> None:
    cache, backend = layer(), Backend(lambda n: dict(result))
    m = mount(cache_tools=["*"])
    for _ in range(2):
        await cache.call(m, "tools/call", LOOKUP, None, 60, backend)
    assert backend.calls == 2
    assert cache.counters.stores == 0


async def test_errors_are_never_stored() -> None:
    cache = layer()
    m = mount(cache_tools=["*"])

    async def failing() -> dict[str, Any]:
        raise RuntimeError("backend error")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await cache.call(m, "tools/call", LOOKUP, None, 60, failing)
    assert cache.counters.misses == 2
    assert cache.counters.stores == 0


def test_which_requests_are_cacheable() -> None:
    cache = layer()
    m = mount(cache_tools=["get_*", "lookup"], cache_resources=["docs://*"])
    ttl = cache.request_ttl
    assert ttl(m, "tools/call", {"name": "get_user"}) == 300.0
    assert ttl(m, "tools/call", {"name": "delete_user"}) is None
    assert ttl(m, "tools/call", {"name": "lookup", "task": {"ttl": 1000}}) is None
    assert ttl(m, "tools/call", {"name": "lookup", "_meta": {"progressToken": 7}}) is None
    assert ttl(m, "resources/read", {"uri": "docs://a/b"}) == 300.0
    assert ttl(m, "resources/read", {"uri": "file:///etc/passwd"}) is None
    assert ttl(m, "completion/complete", {"ref": {}, "argument": {}}) == 300.0
    assert ttl(m, "prompts/get", {"name": "p"}) is None
    plain = mount(id="plain")
    assert ttl(plain, "tools/call", {"name": "lookup"}) is None
    assert ttl(plain, "resources/read", {"uri": "docs://a"}) is None


def test_time_to_live_most_specific_first() -> None:
    cache = layer(ttl=100, method_ttl={"completion/complete": 0, "resources/read": 50})
    complete, read, call = "completion/complete", "resources/read", "tools/call"
    defaults = mount(id="a", cache_resources=["*"], cache_tools=["*"])
    assert cache.request_ttl(defaults, complete, {}) is None
    assert cache.request_ttl(defaults, read, {"uri": "x"}) == 50
    assert cache.request_ttl(defaults, call, {"name": "t"}) == 100
    per_mount = mount(id="b", cache_resources=["*"], cache_ttl=20,
                      cache_method_ttl={"resources/read": 5})
    assert cache.request_ttl(per_mount, complete, {}) == 20
    assert cache.request_ttl(per_mount, read, {"uri": "x"}) == 5
    off = mount(id="c", cache_resources=["*"], cache_ttl=0)
    assert cache.request_ttl(off, read, {"uri": "x"}) is None


def test_keys_are_canonical() -> None:
    m = mount()
    fp = fingerprint(m)
    a = entry_key("m", fp, "tools/call", {"name": "t", "arguments": {"x": 1, "y": [1, 2]}}, "-")
    b = entry_key("m", fp, "tools/call", {"arguments": {"y": [1, 2], "x": 1}, "name": "t"}, "-")
    assert a == b
    assert canonical_params({"a": 1, "_meta": {"progressToken": 5}}) == b'{"a":1}'
    assert canonical_params({"a": 1, "_meta": {"progressToken": 5, "k": "v"}}) == (
        b'{"_meta":{"k":"v"},"a":1}')
    # two calls that differ only in their trace context share an entry
    traced = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
              "tracestate": "vendor=1", "k": "v"}
    assert canonical_params({"a": 1, "_meta": traced}) == b'{"_meta":{"k":"v"},"a":1}'
    assert entry_key("m", fp, "tools/call", {"name": "t"}, "p=dev") != entry_key(
        "m", fp, "tools/call", {"name": "t"}, "p=ops")


async def test_a_changed_mount_does_not_reuse_entries() -> None:
    cache, backend = layer(), Backend()
    before = mount(cache_tools=["*"])
    after = mount(cache_tools=["*"], args=["--other"])
    relabelled = mount(cache_tools=["*"], description="same backend")
    await cache.call(before, "tools/call", LOOKUP, None, 60, backend)
    await cache.call(after, "tools/call", LOOKUP, None, 60, backend)
    await cache.call(relabelled, "tools/call", LOOKUP, None, 60, backend)
    assert backend.calls == 2


async def test_invalidation_drops_exactly_what_changed() -> None:
    cache = layer()
    m = mount(cache_tools=["*"], cache_resources=["*"])
    other = mount(id="other", cache_tools=["*"])
    backend = Backend()
    requests = [
        (m, "tools/call", LOOKUP),
        (m, "resources/read", {"uri": "count://a"}),
        (m, "resources/read", {"uri": "count://b"}),
        (m, "completion/complete", {"ref": {"type": "ref/prompt", "name": "p"}}),
        (other, "tools/call", LOOKUP),
    ]

    async def misses_after(invalidate: Any) -> list[bool]:
        for config, method, params in requests:
            await cache.call(config, method, params, None, 60, backend)
        await invalidate
        before = backend.calls
        missed = []
        for config, method, params in requests:
            calls = backend.calls
            await cache.call(config, method, params, None, 60, backend)
            missed.append(backend.calls > calls)
        assert backend.calls - before == sum(missed)
        return missed

    assert await misses_after(cache.lists_changed("m", ("tools",))) == [
        True, False, False, False, False]
    assert await misses_after(cache.resource_updated("m", "count://a")) == [
        False, True, False, False, False]
    assert await misses_after(cache.lists_changed("m", ("resources", "resource_templates"))) == [
        False, True, True, True, False]
    assert await misses_after(cache.mount_changed("m")) == [True, True, True, True, False]
    assert cache.counters.invalidations == 4


async def test_result_fetched_across_an_invalidation_is_not_stored() -> None:
    cache = layer()
    m = mount(cache_tools=["*"])
    started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"content": []}

    with anyio.fail_after(5):
        call = asyncio.ensure_future(cache.call(m, "tools/call", LOOKUP, None, 60, slow))
        await started.wait()
        await cache.lists_changed("m", ("tools",))
        release.set()
        await call
    assert cache.counters.stores == 0


async def test_lists_of_silent_backends_are_kept_no_longer_than_list_ttl() -> None:
    clock = [0.0]
    memory = MemoryCache(clock=lambda: clock[0])
    cache = layer(memory, list_ttl=10.0)
    m = mount()
    fetches = 0

    async def fetch() -> list[dict[str, Any]]:
        nonlocal fetches
        fetches += 1
        return [{"name": "t"}]

    assert await cache.list_items(m, "tools/list", True, fetch) == [{"name": "t"}]
    assert await cache.list_items(m, "prompts/list", False, fetch) == [{"name": "t"}]
    clock[0] = 11.0
    await cache.list_items(m, "tools/list", True, fetch)  # announced: trusted for the ttl
    await cache.list_items(m, "prompts/list", False, fetch)  # silent: expired with list_ttl
    assert fetches == 3
    unlisted = layer(list_ttl=0.0)
    await unlisted.list_items(m, "prompts/list", False, fetch)
    await unlisted.list_items(m, "prompts/list", False, fetch)
    assert fetches == 5
    assert unlisted.counters.stores == 0


class StalledCache(MemoryCache):
    """A memory cache whose reads hang until ``release`` is set (a stalled store)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def get(self, key: str) -> bytes | None:
        """Wait for ``release``, then read."""
        await self.release.wait()
        return await super().get(key)


async def test_a_stalled_backend_never_stalls_calls() -> None:
    stalled = StalledCache()
    cache = layer(stalled, timeout=0.05, retry_interval=60)
    m = mount(cache_tools=["*"])
    backend = Backend()
    with anyio.fail_after(5):
        await cache.call(m, "tools/call", LOOKUP, None, 60, backend)  # times out: no cache
        await cache.call(m, "tools/call", LOOKUP, None, 60, backend)  # resting: not even tried
    assert backend.calls == 2
    assert cache.counters.errors == 1
    assert cache.counters.bypassed == 1
    assert cache.counters.stores == 0
    stalled.release.set()
    cache.settings = CacheSettings(timeout=1, retry_interval=0)
    await cache.call(m, "tools/call", LOOKUP, None, 60, backend)
    await cache.call(m, "tools/call", LOOKUP, None, 60, backend)
    assert backend.calls == 3
    assert cache.counters.hits == 1


async def test_evictions_are_counted() -> None:
    cache = layer(MemoryCache(max_entries=2))
    m = mount(cache_tools=["*"])
    for key in "abcd":
        await cache.call(m, "tools/call", {"name": "t", "arguments": {"k": key}}, None, 60,
                         Backend())
    assert cache.evictions == 2
    assert cache.snapshot()["evictions"] == 2


def test_from_config() -> None:
    assert CacheLayer.from_config(VmcpConfig.model_validate({"cache": {"enabled": False}})) is None
    built = CacheLayer.from_config(
        VmcpConfig.model_validate({"cache": {"backend": "memory", "max_entries": 5}}))
    assert built is not None
    assert isinstance(built.backend, MemoryCache)
    assert built.backend.max_entries == 5
    with pytest.raises(DriverNotFound, match=r"no driver 'nosuch' in vmcp\.caches"):
        CacheLayer.from_config(VmcpConfig.model_validate({"cache": {"backend": "nosuch"}}))


# -- the hints of 2026-07-28 backends (ttlMs, cacheScope) --------------------------------


async def test_ttl_ms_caps_the_configured_time_to_live() -> None:
    stored: list[float | None] = []
    memory = MemoryCache()
    original = memory.set

    async def spy(key: str, value: bytes, ttl: float | None = None) -> None:
        stored.append(ttl)
        await original(key, value, ttl)

    memory.set = spy  # type: ignore[method-assign]
    cache, m = layer(memory), mount(cache_tools=["*"])
    await cache.call(m, "tools/call", LOOKUP, None, 60,
                     Backend(lambda n: {"content": [], "ttlMs": 1500}))
    await cache.call(m, "tools/call", {**LOOKUP, "name": "other"}, None, 60,
                     Backend(lambda n: {"content": [], "ttlMs": 600_000}))
    assert stored == [1.5, 60]


async def test_a_private_result_stays_with_its_auth_context() -> None:
    """Two principals of one persona (and a public mount) never share a ``private`` result,
    each principal's second call is a hit, and a public result is still shared."""
    for m in (mount(id="p", cache_tools=["*"]), mount(id="q", cache_tools=["*"],
                                                       cache_public=True)):
        cache = layer()
        backend = Backend(lambda n: {"content": [{"type": "text", "text": f"#{n}"}],
                                     "cacheScope": "private"})
        answers = [(await cache.call(m, "tools/call", LOOKUP, "dev", 60, backend, who))
                   ["content"][0]["text"] for who in ("ann", "bob", "ann", "bob", None, None)]
        assert answers == ["#1", "#2", "#1", "#2", "#3", "#3"]
        shared = Backend(lambda n: {"content": [{"type": "text", "text": f"#{n}"}],
                                    "cacheScope": "public"})
        for who in ("ann", "bob"):
            await cache.call(m, "tools/call", {**LOOKUP, "name": "pub"}, "dev", 60, shared, who)
        assert shared.calls == 1


async def test_a_lists_hints_come_from_its_pages() -> None:
    cache, m = layer(), mount()
    fetches = 0

    def reader(ttl_ms: int, scope: str) -> Callable[[], Any]:
        hints: dict[str, Any] = {}

        async def fetch() -> list[dict[str, Any]]:
            nonlocal fetches
            fetches += 1
            hints.update({"ttlMs": ttl_ms, "cacheScope": scope})
            return [{"name": "t"}]

        return lambda: cache.list_items(m, "tools/list", True, fetch, hints)

    zero = reader(0, "public")
    await zero()
    await zero()
    assert fetches == 2  # ttlMs 0: not kept
    private = reader(60_000, "private")
    await private()
    await private()
    assert fetches == 3  # the gateway's own reading: a private list is kept for it
