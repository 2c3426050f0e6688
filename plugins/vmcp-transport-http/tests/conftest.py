"""Fixtures of the HTTP transport tests; the helpers live in ``http_harness``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conformance_suite import Suite, SuiteUnavailable, install


@pytest.fixture
def anyio_backend() -> str:
    """Run ``pytest.mark.anyio`` tests on asyncio (aiohttp needs it)."""
    return "asyncio"


@pytest.fixture(scope="module")
def suite() -> Iterator[Suite]:
    """The installed conformance suite (``conformance_suite``), or a skip when it cannot be
    installed here."""
    try:
        yield install()
    except SuiteUnavailable as exc:
        pytest.skip(f"conformance suite unavailable: {exc}")
