"""The cache driver interface (entry-point group ``vmcp.caches``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class CacheBackend(ABC):
    """Stores opaque byte values under string keys, each with an optional time to live.

    Instances are created with the driver's config table as keyword settings. Keys are built
    by the cache layer (they already include the persona, mount, method and parameters), so
    a backend only stores and forgets. Every method is safe to call concurrently.
    """

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """Return the value stored under ``key``, or None when absent or expired."""

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (None: until evicted)."""

    @abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Forget every key starting with ``prefix``; return how many were dropped."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty on purpose
        """Release connections or files. The default does nothing."""
