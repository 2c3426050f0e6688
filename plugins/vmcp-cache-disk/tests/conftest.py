"""Fixtures of the ``disk`` cache driver tests.

The gateway tests share the kernel's cache test helpers (``tests/cache/cache_harness.py``) and
its counting fixture backend, so that folder goes on ``sys.path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "cache"))


@pytest.fixture
def anyio_backend() -> str:
    """Run ``pytest.mark.anyio`` tests on asyncio only."""
    return "asyncio"
