"""The ``redis`` cache in running gateways: two instances share it; losing Redis fails nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from cache_harness import (
    EVENT_TIMEOUT,
    Notifications,
    call_text,
    counting_mount,
    counts,
    gateway,
    read_text,
    write_config,
)

from vmcp.testing import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]


def redis_config(tmp_path: Path, server: RedisServer, **cache: Any) -> Path:
    """Counting backends (agreeing on added tools through one state file) and a Redis cache."""
    backend = counting_mount(env={"COUNTING_STATE": str(tmp_path / "tools.state")},
                             cache_tools=["lookup"], cache_resources=["count://*"])
    settings = {"backend": "redis", "url": server.url, "namespace": "test",
                "reconnect_interval": 0.1, **cache}
    return write_config(tmp_path / "vmcp.toml", {"counting": backend}, settings)


async def test_two_gateways_share_one_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    config = redis_config(tmp_path, redis_server)
    notes_a, notes_b = Notifications(), Notifications()
    async with (
        gateway(config, tmp_path / "home-a", tmp_path / "a.log", message_handler=notes_a) as a,
        gateway(config, tmp_path / "home-b", tmp_path / "b.log", message_handler=notes_b) as b,
    ):
        with anyio.fail_after(EVENT_TIMEOUT):
            # b started after a: it took a's lists from Redis, its backend was not asked
            assert (await counts(b))["tools/list"] == 0
            # a result a's backend gave is b's answer too
            assert await call_text(a, "counting__lookup", key="k") == "k #1"
            assert await call_text(b, "counting__lookup", key="k") == "k #1"
            assert (await counts(b))["tools/call:lookup"] == 0

            # a's backend announces a new tool; b hears of it through pub/sub alone
            await call_text(a, "counting__add_tool", name="extra")
            await notes_b.wait_for(types.ToolListChangedNotification)
            assert "counting__extra" in [tool.name for tool in (await b.list_tools()).tools]

            # a resource update seen by a drops the entry b stored
            assert await read_text(b, "count://a") == "count://a #1"
            assert await read_text(a, "count://a") == "count://a #1"
            assert (await counts(a))["resources/read:count://a"] == 0
            await a.subscribe_resource("count://a")
            await call_text(a, "counting__touch", uri="count://a")
            await notes_a.wait_for(types.ResourceUpdatedNotification)
            assert await read_text(b, "count://a") == "count://a #2"
            assert await read_text(a, "count://a") == "count://a #2"


async def test_losing_redis_mid_run_fails_no_call(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    config = redis_config(tmp_path, redis_server, retry_interval=0)
    log = tmp_path / "gateway.log"
    async with gateway(config, tmp_path / "home", log) as session:
        with anyio.fail_after(EVENT_TIMEOUT):
            assert await call_text(session, "counting__lookup", key="k") == "k #1"
            assert await call_text(session, "counting__lookup", key="k") == "k #1"
            redis_server.stop()
            assert await call_text(session, "counting__lookup", key="k") == "k #2"
            assert await call_text(session, "counting__lookup", key="k") == "k #3"
            assert await read_text(session, "count://b") == "count://b #1"
            assert "counting__lookup" in [t.name for t in (await session.list_tools()).tools]
            redis_server.start()  # Redis is back (empty): caching resumes
            assert await call_text(session, "counting__lookup", key="k") == "k #4"
            assert await call_text(session, "counting__lookup", key="k") == "k #4"
    assert "serving without the cache" in log.read_text()
