"""The ``redis`` cache driver: one store shared by every gateway of a deployment.

Keys are ``<namespace>:<key>``, so several deployments can share one Redis. Invalidations
are published on the channel ``<namespace>:invalidations``; every gateway subscribed to it
re-reads what another one saw change. Commands never retry and time out quickly: when Redis
is gone the cache layer goes on without it, and a listener reconnects on its own.

Size bounds are Redis's own (``maxmemory`` with a ``volatile-*`` or ``allkeys-*`` policy:
every entry is written with its time to live); ``max_value_bytes`` keeps single huge results
out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from vmcp.cache.base import CacheBackend, MessageHandler

log = logging.getLogger("vmcp.cache.redis")

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_NAMESPACE = "vmcp"
DEFAULT_MAX_VALUE_BYTES = 8 * 1024 * 1024
_SCAN_BATCH = 500
_GLOB_SPECIALS = str.maketrans({c: "\\" + c for c in "*?[]\\"})


class RedisCache(CacheBackend):
    """A cache in Redis, shared by every gateway configured with the same namespace.

    Settings (the ``[cache]`` table): ``url`` (default ``redis://127.0.0.1:6379/0``),
    ``namespace`` (default ``vmcp``; one per deployment), ``max_value_bytes`` (default
    8 MiB), ``socket_timeout`` (seconds per command, default 0.5), ``reconnect_interval``
    (seconds between attempts to resubscribe after losing Redis, default 1).
    """

    def __init__(
        self,
        *,
        url: str = DEFAULT_URL,
        namespace: str = DEFAULT_NAMESPACE,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        socket_timeout: float = 0.5,
        reconnect_interval: float = 1.0,
        **settings: Any,
    ) -> None:
        if not namespace or ":" in namespace:
            raise ValueError("namespace must be a non-empty name without ':'")
        super().__init__(url=url, namespace=namespace, max_value_bytes=max_value_bytes,
                         socket_timeout=socket_timeout, reconnect_interval=reconnect_interval,
                         **settings)
        self.namespace = namespace
        self.channel = f"{namespace}:invalidations"
        self.max_value_bytes = max_value_bytes
        self.reconnect_interval = reconnect_interval
        self._prefix = f"{namespace}:"
        self._redis = Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0))
        self._listener: asyncio.Task[None] | None = None

    async def get(self, key: str) -> bytes | None:
        """``GET <namespace>:<key>``."""
        value = await self._redis.get(self._prefix + key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """``SET <namespace>:<key>`` with the time to live in milliseconds."""
        if len(value) > self.max_value_bytes:
            return
        expiry = max(1, int(ttl * 1000)) if ttl is not None else None
        await self._redis.set(self._prefix + key, value, px=expiry)

    async def delete_prefix(self, prefix: str) -> int:
        """``SCAN`` for the namespaced prefix and ``UNLINK`` what matches, batch by batch."""
        pattern = (self._prefix + prefix).translate(_GLOB_SPECIALS) + "*"
        dropped = 0
        batch: list[bytes] = []
        async for key in self._redis.scan_iter(match=pattern, count=_SCAN_BATCH):
            batch.append(key)
            if len(batch) >= _SCAN_BATCH:
                dropped += await self._redis.unlink(*batch)
                batch = []
        if batch:
            dropped += await self._redis.unlink(*batch)
        return dropped

    async def publish(self, message: bytes) -> None:
        """``PUBLISH`` on the namespace's invalidation channel."""
        await self._redis.publish(self.channel, message)

    async def subscribe(self, handler: MessageHandler) -> None:
        """Listen on the invalidation channel; return once subscribed (or the first try failed:
        the listener then keeps trying every ``reconnect_interval`` seconds)."""
        first_try = asyncio.Event()
        self._listener = asyncio.get_running_loop().create_task(
            self._listen(handler, first_try), name="vmcp-cache-redis-listener")
        await first_try.wait()

    async def _listen(self, handler: MessageHandler, first_try: asyncio.Event) -> None:
        lost = False
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                first_try.set()
                if lost:
                    log.warning("redis cache: listening for invalidations again")
                    lost = False
                while True:
                    message = await pubsub.get_message(timeout=self.reconnect_interval)
                    if message is not None and message.get("type") == "message":
                        self._deliver(handler, message["data"])
            except (RedisError, OSError) as exc:
                first_try.set()
                if not lost:
                    log.warning("redis cache: invalidation channel lost (%s); retrying", exc)
                    lost = True
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(self.reconnect_interval)

    @staticmethod
    def _deliver(handler: MessageHandler, data: bytes) -> None:
        try:
            handler(data)
        except Exception:
            log.exception("redis cache: handling an invalidation failed")

    async def aclose(self) -> None:
        """Stop listening and close the connections."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._redis.aclose()
