"""Fixtures for the operations tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_harness import Home


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    """A fresh ``VMCP_HOME``; any gateway left running with it is stopped at teardown."""
    made = Home(tmp_path / "home")
    made.path.mkdir()
    yield made
    made.ensure_stopped()


@pytest.fixture(autouse=True)
def keep_vmcp_logger() -> Iterator[None]:
    """Commands run in-process configure the ``vmcp`` logger: put it back afterwards."""
    logger = logging.getLogger("vmcp")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for handler in logger.handlers:
        if handler not in saved[0]:
            handler.close()
    logger.handlers[:], logger.level, logger.propagate = saved
