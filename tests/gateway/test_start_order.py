"""What ``Gateway.start`` does while the backends start up.

The backends are spawned before anything else; the cache opens and ``alongside`` runs (the
metrics endpoint of ``vmcp start``) while they start, and the lists are still read through
the cache. The gateway runs in the test's event loop with real fixture backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from gateway_harness import ALPHA, BETA, CONNECT_TIMEOUT, backend, write_config

from vmcp import hookimpl
from vmcp.config import MountConfig, load_config
from vmcp.gateway.gateway import Gateway
from vmcp.plugins import get_plugin_manager

pytestmark = pytest.mark.anyio


class SpawnCounter:
    """A hook plugin counting ``vmcp_backend_prepare`` calls (one per backend spawned)."""

    def __init__(self) -> None:
        self.spawns = 0

    @hookimpl
    def vmcp_backend_prepare(self, mount: MountConfig, env: dict[str, str],
                             headers: dict[str, str]) -> None:
        self.spawns += 1


@pytest.fixture
def spawn_counter() -> Iterator[SpawnCounter]:
    """A :class:`SpawnCounter` registered with the process's plugin manager for one test."""
    counter = SpawnCounter()
    pm = get_plugin_manager()
    pm.register(counter, name="test-spawn-counter")
    yield counter
    pm.unregister(counter)


def make_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    monkeypatch.setenv("VMCP_HOME", str(tmp_path / "home"))
    path = write_config(tmp_path / "vmcp.toml",
                        {"alpha": backend(ALPHA), "beta": backend(BETA, replicas=2)})
    config, _ = load_config(path)
    return Gateway(config)


async def test_alongside_runs_while_the_spawned_backends_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spawn_counter: SpawnCounter
) -> None:
    gateway = make_gateway(tmp_path, monkeypatch)
    seen: dict[str, Any] = {}

    async def alongside() -> None:
        seen["spawns"] = spawn_counter.spawns
        seen["states"] = {m.mount_id: m.state for m in gateway.mounts.values()}
        seen["cache"] = gateway.cache

    try:
        with anyio.fail_after(CONNECT_TIMEOUT):
            await gateway.start(alongside)
        assert seen["spawns"] == 3  # alpha, and beta's two replicas
        assert seen["states"] == {"alpha": "starting", "beta": "starting"}
        assert seen["cache"] is not None  # opened first
        assert {m.state for m in gateway.mounts.values()} == {"up"}
        cache = gateway.cache
        assert cache is not None
        assert all(m.cache is cache for m in gateway.mounts.values())
        assert cache.counters.misses > 0  # the lists were read through it
        assert any(name.startswith("alpha__") for name in gateway.namespace.tools)
    finally:
        await gateway.stop()


async def test_what_alongside_raises_comes_out_of_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = make_gateway(tmp_path, monkeypatch)

    async def alongside() -> None:
        raise OSError("address already in use")

    try:
        with anyio.fail_after(CONNECT_TIMEOUT), pytest.raises(OSError, match="in use"):
            await gateway.start(alongside)
    finally:
        await gateway.stop()
    assert {m.state for m in gateway.mounts.values()} == {"down"}
