"""Fixtures for the http source tests: a real local registry server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from http_registry_fixture import Registry, make_servers

from vmcp.testing import local_http_server


@pytest.fixture
def registry() -> Iterator[str]:
    """A registry with 10 servers on 127.0.0.1 and a free port; yields its base URL."""
    Registry.servers = make_servers(10)
    Registry.requests = []
    with local_http_server(Registry) as url:
        yield url


@pytest.fixture
def anyio_backend() -> str:
    """Run ``pytest.mark.anyio`` tests on asyncio only."""
    return "asyncio"
