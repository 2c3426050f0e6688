"""The metrics count the tasks alive on the gateway's event loop (what a soak watches for a
leak), read when scraped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from gateway_harness import write_config

from vmcp.config import load_config
from vmcp.gateway.gateway import Gateway
from vmcp.monitoring.metrics import GatewayMetrics

pytestmark = pytest.mark.anyio


def _tasks(metrics: GatewayMetrics) -> float:
    for line in metrics.exposition().decode().splitlines():
        if line.startswith("vmcp_event_loop_tasks "):
            return float(line.split()[1])
    raise AssertionError("no vmcp_event_loop_tasks gauge")


async def test_the_gauge_follows_the_tasks_on_the_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMCP_HOME", str(tmp_path / "home"))
    metrics = GatewayMetrics(Gateway(load_config(write_config(tmp_path / "vmcp.toml", {}))[0]))
    before = _tasks(metrics)
    assert before >= 1  # this test's own
    release = asyncio.Event()
    waiting = [asyncio.create_task(release.wait()) for _ in range(5)]
    try:
        assert _tasks(metrics) == before + 5
    finally:
        release.set()
        await asyncio.gather(*waiting)
    assert _tasks(metrics) == before

