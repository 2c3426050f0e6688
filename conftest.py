"""Session-wide test setup for every test folder (``tests`` and ``plugins/*/tests``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PREFORK = Path(__file__).resolve().parent / "tests" / "fixtures" / "servers" / "prefork.py"
_ZYGOTE_KEY = pytest.StashKey[subprocess.Popen[bytes]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the fixture servers' zygote (``tests/fixtures/servers/prefork.py``) once per run,
    in the main process (with xdist: in the controller, shared by every worker).

    Not waited for: fixture servers started before it listens start as usual.
    """
    if hasattr(session.config, "workerinput"):
        return
    session.config.stash[_ZYGOTE_KEY] = subprocess.Popen(
        [sys.executable, str(PREFORK)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        start_new_session=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the zygote (fixture servers still running keep running until their tests end them)."""
    zygote = session.config.stash.get(_ZYGOTE_KEY, None)
    if zygote is not None:
        zygote.terminate()
        zygote.wait()
