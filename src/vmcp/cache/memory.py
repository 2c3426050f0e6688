"""The built-in ``memory`` cache driver: an in-process LRU with per-entry time to live."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from vmcp.cache.base import CacheBackend

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass
class CacheStats:
    """Counters of a :class:`MemoryCache` since it was created."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0  # dropped to stay within max_entries / max_bytes
    expirations: int = 0  # dropped because their time to live had passed


class _Entry(NamedTuple):
    value: bytes
    size: int
    expires: float | None  # clock reading after which the entry is gone


class MemoryCache(CacheBackend):
    """Least-recently-used cache held in memory, bounded by entry count and by bytes.

    Settings (the ``[cache]`` table): ``max_entries`` (default 10000) and ``max_bytes``
    (default 64 MiB). An entry's size is its key's length plus its value's length; a value
    larger than ``max_bytes`` on its own is not stored. ``clock`` (a function returning
    seconds, default :func:`time.monotonic`) exists so tests can move time.

    ``get`` and ``set`` are O(1). Every method runs without awaiting, so concurrent calls
    on one event loop never interleave.
    """

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
        **settings: Any,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        super().__init__(max_entries=max_entries, max_bytes=max_bytes, **settings)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.stats = CacheStats()
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        """How many entries are held (expired ones included until they are touched)."""
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """The summed size of every held entry."""
        return self._bytes

    async def get(self, key: str) -> bytes | None:
        """Return the live value under ``key`` and mark it most recently used."""
        entry = self._entries.get(key)
        if entry is None:
            self.stats.misses += 1
            return None
        if entry.expires is not None and self._clock() >= entry.expires:
            self._drop(key)
            self.stats.expirations += 1
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return entry.value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value``; evict least recently used entries until the bounds hold."""
        if key in self._entries:
            self._drop(key)
        size = len(key) + len(value)
        if size > self.max_bytes:
            return
        expires = None if ttl is None else self._clock() + ttl
        self._entries[key] = _Entry(value, size, expires)
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self.stats.evictions += 1

    async def delete_prefix(self, prefix: str) -> int:
        """Forget every key starting with ``prefix``; a scan over all keys."""
        doomed = [key for key in self._entries if key.startswith(prefix)]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    def evictions(self) -> int:
        """Entries dropped so far to stay within ``max_entries`` and ``max_bytes``."""
        return self.stats.evictions

    def _drop(self, key: str) -> None:
        self._bytes -= self._entries.pop(key).size
