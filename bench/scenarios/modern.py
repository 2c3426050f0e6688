"""The 2026-07-28 era over HTTP: stateless ``tools/call`` with no session.

Targets: the fixture served over HTTP in-process by aiohttp answering modern requests
(``direct``), and the gateway's ``http`` front with the fixture as its one stdio mount, asked
in the modern era (``gateway``). Each client is one keep-alive connection sending calls that
carry the ``_meta`` envelope and the modern headers; no ``initialize``, no session id.
"""

from __future__ import annotations

import contextlib
from typing import Any

from bench.http_client import ACCEPT_BOTH, ACCEPT_JSON
from bench.procs import PYTHON, ServerProcess, fixture_mount
from bench.scenarios.common import MOUNT, Workspace, http_unavailable
from bench.scenarios.http import Plan, measure_levels
from bench.settings import BenchSettings

#: the numbers of concurrent clients measured
LEVELS = (8, 32)


def run(settings: BenchSettings) -> dict[str, Any]:
    """Every level, both targets interleaved; medians over the repetitions."""
    reason = http_unavailable()
    if reason is not None:
        return {"status": "skipped", "reason": reason}
    space = Workspace(settings, "modern")
    with contextlib.ExitStack() as stack:
        direct = ServerProcess(space.command([PYTHON, "-m", "bench.http_fixture"]),
                               space.log("direct"))
        stack.callback(direct.close)
        gateway = ServerProcess(space.gateway("gateway", {MOUNT: fixture_mount()}, front="http"),
                                space.log("gateway"))
        stack.callback(gateway.close)
        plan: Plan = {
            "direct": (direct, "tool_0", ACCEPT_JSON),
            "gateway": (gateway, f"{MOUNT}__tool_0", ACCEPT_BOTH),
        }
        levels = measure_levels(settings, plan, LEVELS, modern=True)
    return {"status": "ok", "levels": levels}
