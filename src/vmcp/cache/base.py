"""The cache driver interface (entry-point group ``vmcp.caches``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

#: receives one message another gateway published (see :meth:`CacheBackend.subscribe`)
MessageHandler = Callable[[bytes], None]


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

    async def publish(self, message: bytes) -> None:  # noqa: B027 - optional hook
        """Send ``message`` to every other gateway subscribed to this backend.

        The cache layer publishes its invalidations so that gateways sharing one store
        re-read what changed. The default does nothing: nobody else sees this store.
        """

    async def subscribe(self, handler: MessageHandler) -> None:  # noqa: B027 - optional hook
        """Start handing ``handler`` the messages other gateways publish, until :meth:`aclose`.

        Returns once listening has started (or was scheduled, for a backend that reconnects
        on its own). The default does nothing.
        """

    def evictions(self) -> int:
        """How many entries were dropped so far to stay within the size bounds.

        The default is 0, for a driver that cannot tell (its server evicts on its own).
        """
        return 0
