"""The ``disk`` cache driver: a diskcache (SQLite) store in a folder.

Entries survive a restart of the gateway, and several gateway processes on one machine may
share the folder: SQLite in WAL mode serialises their writes and never blocks their reads.
Reads run on the event loop (a WAL read of one row); writes, evictions and invalidations
run in one worker thread, so a slow disk or a busy writer in another process never stalls
the gateway.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import diskcache

from vmcp.cache.base import CacheBackend
from vmcp.config import vmcp_home

DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_MAX_BYTES = 1024 * 1024 * 1024
#: seconds a write waits for another process's write before it gives up
LOCK_TIMEOUT = 2.0


class DiskCache(CacheBackend):
    """A persistent cache in ``directory`` (default ``$VMCP_HOME/cache/disk``).

    Settings (the ``[cache]`` table): ``directory``; ``max_entries`` (default 100000) and
    ``max_bytes`` (default 1 GiB, the size of the store on disk): past either bound the
    oldest entries are evicted, expired ones first.
    """

    def __init__(
        self,
        *,
        directory: str | None = None,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        **settings: Any,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        path = Path(directory).expanduser() if directory else vmcp_home() / "cache" / "disk"
        super().__init__(directory=str(path), max_entries=max_entries, max_bytes=max_bytes,
                         **settings)
        self.directory = path
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        # cull_limit=0: this driver evicts itself (see _enforce_bounds), so it can count.
        self._cache = diskcache.Cache(str(path), timeout=LOCK_TIMEOUT, cull_limit=0,
                                      size_limit=max_bytes,
                                      eviction_policy="least-recently-stored")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vmcp-disk-cache")
        self._evictions = 0

    async def _in_writer(self, work: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._writer, work, *args)

    async def get(self, key: str) -> bytes | None:
        """The live value under ``key`` (a read of the SQLite index, on the event loop)."""
        value = self._cache.get(key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` for ``ttl`` seconds, then evict until the bounds hold."""
        await self._in_writer(self._set, key, value, ttl)

    def _set(self, key: str, value: bytes, ttl: float | None) -> None:
        self._cache.set(key, value, expire=ttl)
        self._enforce_bounds()

    def _enforce_bounds(self) -> None:
        cache = self._cache
        if len(cache) <= self.max_entries and cache.volume() <= self.max_bytes:
            return
        cache.expire()
        while len(cache) > self.max_entries or cache.volume() > self.max_bytes:
            try:
                oldest, _ = cache.peekitem(last=False)
            except KeyError:
                return
            if cache.delete(oldest):
                self._evictions += 1

    async def delete_prefix(self, prefix: str) -> int:
        """Forget every key starting with ``prefix`` (a walk of the sorted keys, in the worker)."""
        return await self._in_writer(self._delete_prefix, prefix)  # type: ignore[no-any-return]

    def _delete_prefix(self, prefix: str) -> int:
        doomed = []
        for key in self._cache.iterkeys():  # in key order: the matches are contiguous
            if not isinstance(key, str):
                continue
            if key.startswith(prefix):
                doomed.append(key)
            elif key > prefix:
                break
        return sum(1 for key in doomed if self._cache.delete(key))

    def evictions(self) -> int:
        """Entries this process evicted to stay within the bounds."""
        return self._evictions

    async def aclose(self) -> None:
        """Finish pending writes and close the store."""
        await asyncio.get_running_loop().run_in_executor(None, self._writer.shutdown)
        self._cache.close()

    def __len__(self) -> int:
        """How many entries the store holds (expired ones until they are evicted)."""
        return len(self._cache)
