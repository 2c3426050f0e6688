"""Session-wide test setup for every test folder (``tests`` and ``plugins/*/tests``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
PREFORK = ROOT / "tests" / "fixtures" / "servers" / "prefork.py"
#: The longest test files (a minute or more each on 2 CPUs), longest first, run before the
#: others: with ``--dist loadfile`` a file runs on one worker, and a long one started last
#: would leave the other workers idle at the end.
LONGEST_FIRST = (
    "plugins/vmcp-transport-http/tests/test_conformance_auth_modern.py",
    "plugins/vmcp-transport-http/tests/test_conformance.py",
    "plugins/vmcp-transport-http/tests/test_conformance_auth.py",
    "plugins/vmcp-transport-http/tests/test_conformance_client.py",
    "plugins/vmcp-transport-http/tests/test_http_gateway.py",
    "tests/bench/test_bench_smoke.py",
    "plugins/vmcp-transport-http/tests/test_oauth.py",
)
_ZYGOTE_KEY = pytest.StashKey[subprocess.Popen[bytes]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the fixture servers' zygote (``tests/fixtures/servers/prefork.py``) once per run,
    in the main process (with xdist: in the controller, shared by every worker).

    Not waited for: fixture servers started before it listens start as usual.
    """
    if hasattr(session.config, "workerinput") or not hasattr(os, "pidfd_open"):
        return  # a worker, or not Linux (the supervisors watch their servers with pidfds)
    session.config.stash[_ZYGOTE_KEY] = subprocess.Popen(
        [sys.executable, str(PREFORK)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        start_new_session=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the zygote (fixture servers still running keep running until their tests end them)."""
    zygote = session.config.stash.get(_ZYGOTE_KEY, None)
    if zygote is not None:
        zygote.terminate()
        zygote.wait()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the tests of :data:`LONGEST_FIRST` to the front, in its order (the rest keep theirs)."""
    rank = {ROOT / name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path, len(rank)))
