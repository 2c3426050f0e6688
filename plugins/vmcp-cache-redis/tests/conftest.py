"""Fixtures of the ``redis`` cache driver tests: a real ``redis-server`` on a free port.

The gateway tests share the kernel's cache test helpers (``tests/cache/cache_harness.py``) and
its counting fixture backend, so that folder goes on ``sys.path``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmcp.testing import RedisServer, running_redis

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "cache"))


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A running ``redis-server`` on a free port, ended after the test."""
    if not RedisServer.installed():
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with running_redis() as server:
        yield server


@pytest.fixture
def anyio_backend() -> str:
    """Run ``pytest.mark.anyio`` tests on asyncio only."""
    return "asyncio"
