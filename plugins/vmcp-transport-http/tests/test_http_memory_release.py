"""A gateway serving the HTTP front gives its memory back once a load of sessions is gone:
the release step runs after they are all ended, and they left no cyclic garbage behind."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest
from http_harness import run_gateway, stdio_fixture, write_config
from test_http_front import Client

from vmcp.memrelease import MIN_PEAK

pytestmark = pytest.mark.anyio

SESSIONS = MIN_PEAK + 20
RELEASED = re.compile(r"memory released after a load: (\d+) objects collected, "
                      r"the loop held ([\d.]+) ms")


async def test_the_gateway_gives_memory_back_once_its_sessions_are_gone(tmp_path: Path) -> None:
    config = write_config(tmp_path / "vmcp.toml", {
        "transports.http": {"port": 0},
        "servers.one": stdio_fixture(),
    })
    async with run_gateway(config, "http", options=("--log-level", "info")) as gateway, \
            aiohttp.ClientSession() as http:
        clients = [Client(http, gateway.url) for _ in range(SESSIONS)]
        for start in range(0, SESSIONS, 20):
            await asyncio.gather(*(client.initialize() for client in clients[start:start + 20]))
        assert not [line for line in gateway.stderr if "memory released" in line]
        for client in clients:
            response = await http.delete(gateway.url, headers=client.headers())
            assert response.status == 200
        line = await gateway.wait_for_line("memory released after a load")
    match = RELEASED.search(line)
    assert match is not None, line
    # an ended session is freed at once: were it in a cycle with the gateway's session,
    # the collection would find about eight objects for each
    assert int(match.group(1)) < SESSIONS, line
