"""The ``redis`` cluster driver: the state every gateway instance of a deployment shares.

Keys (``<prefix>`` is ``[cluster] key_prefix``; the braces keep one session's keys in one
Redis Cluster slot):

* ``<prefix>:session:{<id>}`` a hash: ``data`` (the :class:`SessionRecord` as JSON),
  ``last_seen`` and ``delivered`` (the last event written to the client); it lives the HTTP
  front's idle timeout, renewed when the session is used;
* ``<prefix>:events:{<id>}`` a Stream: the session's standalone-stream messages (field
  ``m``), capped with ``MAXLEN ~``, living as long as the record;
* ``<prefix>:ended:{<id>}`` set by DELETE, so that no instance writes the record back;
* ``<prefix>:instance:<name>`` each instance's heartbeat (JSON), living three intervals;
* channels ``<prefix>:to:<name>`` (one per instance) and ``<prefix>:all``.

Commands are tried once more on a fresh connection only, each try timing out after ``timeout``
seconds: the instance goes on with what needs no shared state, and the heartbeat loop says
when Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from vmcp.cluster.base import InstanceInfo, MessageHandler, SharedState
from vmcp.cluster.record import SessionRecord

log = logging.getLogger("vmcp.cluster.redis")

#: seconds a blocking read of a session's event log waits before it returns empty
BLOCK = 5.0
_SCAN_BATCH = 200
#: mark a session seen (renewing its record and log) unless DELETE ended it
_TOUCH = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
return 1
"""
#: remember the last delivered event, only while the record exists (no key without a TTL)
_DELIVERED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'delivered', ARGV[1])
return 1
"""


class RedisSharedState(SharedState):
    """Shared sessions, event logs, answers and heartbeats in one Redis."""

    def __init__(
        self,
        *,
        url: str,
        instance: str,
        prefix: str = "vmcp",
        heartbeat_interval: float = 5.0,
        timeout: float = 0.5,
        stream_max_events: int = 1000,
    ) -> None:
        super().__init__(instance)
        self.prefix = prefix
        self.heartbeat_interval = heartbeat_interval
        self.max_events = stream_max_events
        # One retry, on a new connection: after Redis restarted, every pooled connection
        # is dead, and the first command on each would fail although Redis is back.
        options: dict[str, Any] = {"socket_connect_timeout": timeout,
                                   "retry": Retry(NoBackoff(), 1)}
        self._redis = Redis.from_url(url, socket_timeout=timeout, **options)
        # blocking reads of event logs wait longer than one command may take
        self._blocking = Redis.from_url(url, socket_timeout=BLOCK + timeout, **options)
        self._touch = self._redis.register_script(_TOUCH)
        self._mark = self._redis.register_script(_DELIVERED)
        self._handlers: list[MessageHandler] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._problem: str | None = "Redis not reached yet"
        self._channel = f"{prefix}:to:{instance}"
        self._broadcast = f"{prefix}:all"

    # -- keys -----------------------------------------------------------------------------
    def _session_key(self, session_id: str) -> str:
        return f"{self.prefix}:session:{{{session_id}}}"

    def _events_key(self, session_id: str) -> str:
        return f"{self.prefix}:events:{{{session_id}}}"

    def _ended_key(self, session_id: str) -> str:
        return f"{self.prefix}:ended:{{{session_id}}}"

    def _instance_key(self, instance: str) -> str:
        return f"{self.prefix}:instance:{instance}"

    # -- health ---------------------------------------------------------------------------
    def problem(self) -> str | None:
        """Why Redis is unusable now, or None."""
        return self._problem

    def _failed(self, exc: BaseException) -> None:
        if self._problem is None:
            log.warning("cluster: Redis unreachable (%s)", exc)
        self._problem = f"Redis unreachable: {exc}"

    def _ok(self) -> None:
        if self._problem is not None:
            log.info("cluster: Redis reachable")
            self._problem = None

    async def _call(self, work: Any) -> Any:
        """Await one command, keeping the health state up to date."""
        try:
            result = await work
        except (RedisError, OSError) as exc:
            self._failed(exc)
            raise
        self._ok()
        return result

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Write a first heartbeat (or note Redis is down), then keep beating and listening."""
        await self._beat()
        loop = asyncio.get_running_loop()
        subscribed = asyncio.Event()
        self._tasks = [loop.create_task(self._heartbeats(), name="vmcp-cluster-heartbeat"),
                       loop.create_task(self._listen(subscribed), name="vmcp-cluster-listen")]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.heartbeat_interval):
                await subscribed.wait()

    async def aclose(self) -> None:
        """Stop, remove this instance's heartbeat and disconnect."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(self._instance_key(self.instance))
        await self._redis.aclose()
        await self._blocking.aclose()

    async def _beat(self) -> None:
        beat = {"instance": self.instance, "sessions": self.session_count(), "seen": time.time(),
                "pid": os.getpid(), "host": socket.gethostname()}
        with contextlib.suppress(RedisError, OSError):
            await self._call(self._redis.set(
                self._instance_key(self.instance), json.dumps(beat),
                px=int(self.heartbeat_interval * 3000)))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await self._beat()

    # -- messages between instances -------------------------------------------------------
    def listen(self, handler: MessageHandler) -> None:
        """Call ``handler`` with every message for this instance or for all."""
        self._handlers.append(handler)

    async def publish(self, instance: str | None, message: dict[str, Any]) -> int:
        """``PUBLISH`` on one instance's channel (None: on the channel of all); the number
        of subscribers Redis delivered it to."""
        channel = self._broadcast if instance is None else f"{self.prefix}:to:{instance}"
        return int(await self._call(self._redis.publish(channel, json.dumps(message))))

    async def _listen(self, subscribed: asyncio.Event) -> None:
        lost = False
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel, self._broadcast)
                subscribed.set()
                if lost:
                    log.info("cluster: listening to other instances again")
                    lost = False
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._deliver(message["data"])
            except (RedisError, OSError) as exc:
                self._failed(exc)
                lost = True
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(min(1.0, self.heartbeat_interval))

    def _deliver(self, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            log.warning("cluster: ignored a message that is not JSON")
            return
        if not isinstance(message, dict):
            return
        for handler in self._handlers:
            try:
                handler(message)
            except Exception:
                log.exception("cluster: handling a message from another instance failed")

    # -- sessions -------------------------------------------------------------------------
    async def save_session(self, record: SessionRecord, ttl: float) -> None:
        """``HSET`` the record and its last-seen time, with ``PEXPIRE`` (one transaction)."""
        key = self._session_key(record.session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"data": record.encode(), "last_seen": record.last_seen})
            pipe.pexpire(key, _ms(ttl))
            await self._call(pipe.execute())

    async def load_session(self, session_id: str) -> SessionRecord | None:
        """``HMGET`` the record; None when there is none (or it is unreadable)."""
        data, seen = await self._call(
            self._redis.hmget(self._session_key(session_id), ["data", "last_seen"]))
        if data is None:
            return None
        try:
            record = SessionRecord.decode(data)
        except ValueError as exc:
            log.warning("cluster: unreadable record of session %s: %s", session_id[:12], exc)
            return None
        if seen is not None:
            record.last_seen = float(seen)
        return record

    async def touch_session(self, session_id: str, ttl: float) -> bool | None:
        """Renew the record and its log atomically (a Lua script), unless ended."""
        keys = [self._session_key(session_id), self._ended_key(session_id),
                self._events_key(session_id)]
        done = await self._call(self._touch(keys=keys, args=[_ms(ttl), time.time()]))
        return None if done == -1 else bool(done)

    async def end_session(self, session_id: str, ttl: float) -> None:
        """Delete the record and log and mark the session ended (one transaction)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._session_key(session_id), self._events_key(session_id))
            pipe.set(self._ended_key(session_id), b"1", px=_ms(ttl))
            await self._call(pipe.execute())

    # -- event logs -----------------------------------------------------------------------
    async def append_events(
        self, session_id: str, messages: list[dict[str, Any]], ttl: float
    ) -> list[str]:
        """``XADD`` each message (``MAXLEN ~``), then renew the log's TTL, in one round trip."""
        key = self._events_key(session_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.xadd(key, {"m": json.dumps(message, separators=(",", ":"))},
                          maxlen=self.max_events, approximate=True)
            pipe.pexpire(key, _ms(ttl))
            results = await self._call(pipe.execute())
        return [_text(event_id) for event_id in results[:-1]]

    async def read_events(
        self, session_id: str, after: str | None, block: float
    ) -> list[tuple[str, dict[str, Any]]]:
        """``XREAD BLOCK`` after ``after`` (None: after the ``delivered`` mark, else from the
        start of the log)."""
        if after is None:
            mark = await self._call(self._redis.hget(self._session_key(session_id), "delivered"))
            after = _text(mark) if mark is not None else "0-0"
        timeout_ms = max(1, int(min(block, BLOCK) * 1000))
        found = await self._call(self._blocking.xread(
            {self._events_key(session_id): after}, count=100, block=timeout_ms))
        events = []
        for _, entries in found or ():
            for event_id, fields in entries:
                try:
                    message = json.loads(fields[b"m"])
                except (KeyError, ValueError):
                    continue
                events.append((_text(event_id), message))
        return events

    async def delivered(self, session_id: str, event_id: str) -> None:
        """Set the ``delivered`` mark while the record exists."""
        await self._call(self._mark(keys=[self._session_key(session_id)], args=[event_id]))

    # -- instances ------------------------------------------------------------------------
    async def instances(self) -> list[InstanceInfo]:
        """``SCAN`` the heartbeat keys and read them."""
        keys = [key async for key in self._redis.scan_iter(
            match=f"{self.prefix}:instance:*", count=_SCAN_BATCH)]
        if not keys:
            return []
        found = []
        for value in await self._call(self._redis.mget(keys)):
            if value is None:
                continue
            try:
                beat = json.loads(value)
                found.append(InstanceInfo(str(beat["instance"]), int(beat["sessions"]),
                                          float(beat["seen"]), int(beat["pid"]),
                                          str(beat["host"])))
            except (KeyError, TypeError, ValueError):
                continue
        return sorted(found, key=lambda info: info.instance)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
