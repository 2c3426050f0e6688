"""The cache layer: what the gateway keeps, under which key, for how long, and when it forgets.

One :class:`CacheLayer` per gateway, in front of one :class:`~vmcp.cache.base.CacheBackend`
chosen by ``[cache] backend``. It caches each backend's lists (read by the gateway when a
mount starts or a list changed), ``completion/complete``, and the ``resources/read`` and
``tools/call`` results a mount names cacheable (see :mod:`vmcp.cache.rules`). Never cached:
errors, ``isError`` results, results that are not complete (``input_required``, tasks),
requests carrying a progress token.

A backend of the 2026-07-28 era says how long a result may be kept (``ttlMs``: the configured
time to live is capped by it, 0 means not at all) and whether it may be shared
(``cacheScope``). A ``private`` result a caller asked for is kept for that caller's auth
context only, and the layer remembers (per mount, method and parameters) to look there first;
a ``private`` list is kept, as every list is the gateway's own reading with its own
credentials. A list's hints are those of its pages: the smallest ``ttlMs``, ``private`` if
any page is.

A backend that fails or is too slow (``[cache] timeout``) never fails a call: the call goes
on without the cache, and the cache is left alone for ``[cache] retry_interval`` seconds.

Invalidations (a backend's ``list_changed`` or ``resources/updated``, a mount going down)
drop the entries concerned and are published through the backend, so gateways sharing one
store re-read the lists another gateway saw change. A result fetched while its mount was
being invalidated is not stored (it may predate the change).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from vmcp.cache import keys
from vmcp.cache.base import CacheBackend
from vmcp.cache.rules import MountRules
from vmcp.config import CacheSettings, MountConfig, VmcpConfig
from vmcp.plugins import load_driver

log = logging.getLogger("vmcp.cache")

T = TypeVar("T")
_FAILED: Any = object()
#: how many (mount, method, parameters) whose results came back ``private`` are remembered
MAX_PRIVATE_KEYS = 10_000
#: called with (mount id, list kinds) when another gateway saw those lists change
ListsChanged = Callable[[str, tuple[str, ...]], None]

#: list kind -> the methods whose entries a change of that kind makes stale
_STALE_ON_CHANGE: dict[str, tuple[str, ...]] = {
    "tools": ("tools/list", "tools/call"),
    "prompts": ("prompts/list", "completion/complete"),
    "resources": ("resources/list", "resources/read", "completion/complete"),
    "resource_templates": ("resources/templates/list", "completion/complete"),
}


@dataclass
class CacheCounters:
    """What the cache layer did since the gateway started."""

    hits: int = 0
    misses: int = 0
    #: results written to the backend
    stores: int = 0
    #: lookups skipped because the backend had failed moments before
    bypassed: int = 0
    #: backend operations that failed or timed out
    errors: int = 0
    #: invalidations (a list change, a resource update, a mount going down)
    invalidations: int = 0


def storable_ttl(result: dict[str, Any], ttl: float, public: bool) -> float | None:
    """How long ``result`` may be kept (at most ``ttl``), or None when it must not be."""
    if result.get("isError") is True or "task" in result:
        return None
    if result.get("resultType", "complete") != "complete":
        return None
    if public and result.get("cacheScope") == "private":
        return None
    ttl_ms = result.get("ttlMs")
    if isinstance(ttl_ms, (int, float)) and not isinstance(ttl_ms, bool):
        ttl = min(ttl, ttl_ms / 1000)
    return ttl if ttl > 0 else None


class CacheLayer:
    """The gateway's cache: keys, rules, counters and invalidation over one backend."""

    def __init__(self, backend: CacheBackend, settings: CacheSettings, list_ttl: float) -> None:
        self.backend = backend
        self.settings = settings
        #: how long lists of a backend that never announces changes may be trusted
        self.list_ttl = list_ttl
        self.counters = CacheCounters()
        #: this gateway's id in published messages (its own are ignored when they come back)
        self.origin = secrets.token_hex(8)
        self._rules: dict[str, MountRules] = {}
        #: mount id -> invalidations seen; a fetch that saw it change is not stored
        self._epochs: dict[str, int] = {}
        self._failed_at: float | None = None
        #: the backend failed and has not answered since
        self._down = False
        self._on_lists_changed: ListsChanged | None = None
        #: shared keys whose results the backend marked ``private`` (looked up per caller)
        self._private: set[str] = set()

    @classmethod
    def from_config(cls, config: VmcpConfig) -> CacheLayer | None:
        """The layer ``[cache]`` describes, or None when caching is disabled.

        :raises PluginError: the driver is not installed (the message names the package).
        """
        settings = config.cache
        if not settings.enabled:
            return None
        driver = load_driver("caches", settings.backend)
        backend = driver(**(settings.model_extra or {}))
        return cls(backend, settings, config.gateway.list_ttl)

    async def start(self, on_lists_changed: ListsChanged) -> None:
        """Listen for other gateways' invalidations; ``on_lists_changed`` re-reads lists."""
        self._on_lists_changed = on_lists_changed
        await self._guarded(self.backend.subscribe(self._received), None)

    async def aclose(self) -> None:
        """Close the backend."""
        await self._guarded(self.backend.aclose(), None)

    def snapshot(self) -> dict[str, int]:
        """Every counter, evictions (as the backend reports them) included."""
        return {**asdict(self.counters), "evictions": self.evictions}

    @property
    def evictions(self) -> int:
        """Entries the backend dropped to stay within its size bounds."""
        try:
            return self.backend.evictions()
        except Exception:
            return 0

    # -- rules ----------------------------------------------------------------------------

    def rules(self, mount: MountConfig) -> MountRules:
        """The (memoised) rules of one mount configuration."""
        rules = self._rules.get(mount.id)
        if rules is None or rules.config is not mount:
            rules = self._rules[mount.id] = MountRules.build(mount, self.settings)
        return rules

    def request_ttl(self, mount: MountConfig, method: str, params: dict[str, Any]) -> float | None:
        """How long a routed request's result may be cached, or None to forward it as is."""
        rules = self._rules.get(mount.id)  # rules(), inline: this is asked of every call
        if rules is None or rules.config is not mount:
            rules = self.rules(mount)
        if method not in rules.ttl:  # most methods are never cached
            return None
        return rules.request_ttl(method, params)

    # -- lookups --------------------------------------------------------------------------

    async def call(
        self,
        mount: MountConfig,
        method: str,
        params: dict[str, Any],
        persona: str | None,
        ttl: float,
        fetch: Callable[[], Awaitable[dict[str, Any]]],
        principal: str | None = None,
    ) -> dict[str, Any]:
        """Answer a cacheable request from the cache, or with ``fetch()`` (then remembered).

        ``principal`` names the caller's auth context, which a ``private`` result is kept
        for. The returned result is the backend's own (not yet mapped for the front); on a
        hit it is a fresh copy the caller may change.
        """
        rules = self.rules(mount)
        shared = keys.entry_key(mount.id, rules.fingerprint, method, params,
                                keys.scope(persona, rules.public))

        def private_key() -> str:
            return keys.entry_key(mount.id, rules.fingerprint, method, params,
                                  keys.private_scope(principal))

        if shared in self._private:
            return await self._through(mount.id, private_key(), ttl, False, fetch)  # type: ignore[no-any-return]
        return await self._through(mount.id, shared, ttl, rules.public, fetch,  # type: ignore[no-any-return]
                                   (shared, private_key))

    async def list_items(
        self,
        mount: MountConfig,
        method: str,
        announced: bool,
        fetch: Callable[[], Awaitable[list[dict[str, Any]]]],
        hints: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """A backend's whole list (every page), from the cache or from ``fetch()``.

        Lists are the gateway's own reading, shared by every caller (what a caller may see
        of them is filtered afterwards). A list the backend does not announce changes of
        (``announced`` false) is kept no longer than ``[gateway] list_ttl``. ``hints`` is
        filled by ``fetch()`` with the list's ``ttlMs`` and ``cacheScope`` (if it has any).
        """
        rules = self.rules(mount)
        ttl = rules.ttl.get(method)
        if ttl is not None and not announced:
            ttl = min(ttl, self.list_ttl)
        if not ttl:  # not cached for this mount, or list_ttl is 0
            return await fetch()
        key = keys.entry_key(mount.id, rules.fingerprint, method, {}, keys.PUBLIC_SCOPE)
        return await self._through(mount.id, key, ttl, False, fetch, hints=hints)  # type: ignore[no-any-return]

    async def _through(
        self, mount_id: str, key: str, ttl: float, public: bool,
        fetch: Callable[[], Awaitable[Any]],
        private: tuple[str, Callable[[], str]] | None = None,
        hints: dict[str, Any] | None = None,
    ) -> Any:
        """Look ``key`` up, else fetch and store; ``private`` is the shared key and how to
        make the caller's own, for a result that comes back ``private``."""
        if self._resting():
            self.counters.bypassed += 1
            return await fetch()
        raw = await self._guarded(self.backend.get(key), None)
        if raw is not None:
            try:
                value = json.loads(raw)
            except ValueError:
                log.warning("cache entry %s is not JSON; fetching again", key)
            else:
                self.counters.hits += 1
                return value
        self.counters.misses += 1
        epoch = self._epochs.get(mount_id, 0)
        value = await fetch()
        if private is not None and isinstance(value, dict) and (
                value.get("cacheScope") == "private"):
            self._remember_private(private[0])
            key, public = private[1](), False
        if isinstance(value, dict):
            life = storable_ttl(value, ttl, public)
        else:
            life = storable_ttl(hints, ttl, public) if hints else ttl
        if life is not None and self._epochs.get(mount_id, 0) == epoch and not self._resting():
            data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            if await self._guarded(self.backend.set(key, data, life), _FAILED) is not _FAILED:
                self.counters.stores += 1
        return value

    def _remember_private(self, shared: str) -> None:
        if len(self._private) >= MAX_PRIVATE_KEYS:
            self._private.clear()  # forgetting only costs a miss on the shared key
        self._private.add(shared)

    # -- invalidation ---------------------------------------------------------------------

    async def lists_changed(self, mount_id: str, kinds: tuple[str, ...]) -> None:
        """A backend announced that some lists changed: drop them and what depends on them."""
        methods = dict.fromkeys(m for kind in kinds for m in _STALE_ON_CHANGE[kind])
        await self._invalidate(mount_id, [keys.method_prefix(mount_id, m) for m in methods],
                               kinds)

    async def resource_updated(self, mount_id: str, uri: str) -> None:
        """A backend announced that a resource changed: drop its cached reads."""
        await self._invalidate(mount_id, [keys.resource_prefix(mount_id, uri)], ())

    async def mount_changed(self, mount_id: str) -> None:
        """A mount went down or changed: drop everything cached for it."""
        await self._invalidate(mount_id, [keys.mount_prefix(mount_id)], ())

    async def _invalidate(self, mount_id: str, prefixes: list[str], kinds: tuple[str, ...]) -> None:
        self.counters.invalidations += 1
        self._epochs[mount_id] = self._epochs.get(mount_id, 0) + 1
        if self._resting():
            log.warning("cache backend unavailable: entries of %s may stay stale until they "
                        "expire", mount_id)
            return
        for prefix in prefixes:
            await self._guarded(self.backend.delete_prefix(prefix), 0)
        message = {"origin": self.origin, "mount": mount_id, "kinds": list(kinds)}
        await self._guarded(self.backend.publish(json.dumps(message).encode("utf-8")), None)

    def _received(self, data: bytes) -> None:
        """Another gateway invalidated something (its entries are already gone)."""
        try:
            message = json.loads(data)
            origin, mount_id, kinds = message["origin"], message["mount"], message["kinds"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed cache invalidation message: %r", data[:200])
            return
        if origin == self.origin or not isinstance(mount_id, str):
            return
        self._epochs[mount_id] = self._epochs.get(mount_id, 0) + 1
        known = tuple(kind for kind in kinds if kind in _STALE_ON_CHANGE)
        if known and self._on_lists_changed is not None:
            self._on_lists_changed(mount_id, known)

    # -- failure handling -----------------------------------------------------------------

    def _resting(self) -> bool:
        """True while the backend is left alone after a failure."""
        failed_at = self._failed_at
        if failed_at is None:
            return False
        if time.monotonic() - failed_at < self.settings.retry_interval:
            return True
        self._failed_at = None
        return False

    async def _guarded(self, operation: Awaitable[T], fallback: T) -> T:
        """Run one backend operation; on failure or timeout, note it and return ``fallback``."""
        try:
            async with asyncio.timeout(self.settings.timeout):
                result = await operation
        except Exception as exc:
            self.counters.errors += 1
            if not self._down:
                log.warning("cache backend %s failed (%s); serving without the cache",
                            self.settings.backend, _describe(exc))
            self._down = True
            self._failed_at = time.monotonic()
            return fallback
        if self._down:
            self._down = False
            log.warning("cache backend %s answers again", self.settings.backend)
        return result


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
