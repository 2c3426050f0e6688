"""Fixtures of the HTTP transport tests; the helpers live in ``http_harness``."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Run ``pytest.mark.anyio`` tests on asyncio (aiohttp needs it)."""
    return "asyncio"
