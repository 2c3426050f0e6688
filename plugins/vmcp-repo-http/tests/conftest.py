"""Fixtures for the http source tests: a real local registry server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest
from http_registry_fixture import Registry, make_servers


@pytest.fixture
def registry() -> Iterator[str]:
    """A registry with 10 servers on 127.0.0.1 and a free port; yields its base URL."""
    Registry.servers = make_servers(10)
    Registry.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def anyio_backend() -> str:
    """Run ``pytest.mark.anyio`` tests on asyncio only."""
    return "asyncio"
