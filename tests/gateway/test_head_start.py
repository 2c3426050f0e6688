"""The head start: a stdio ``vmcp start`` whose front snapshot records how the last start
spawned its backends spawns them before it imports the gateway, and the gateway takes
over each one whose launch is exactly what it would spawn itself.

Which backends were taken over is read from the gateway's log (``--log-level info``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest
from gateway_harness import ALPHA, BETA, CONNECT_TIMEOUT, backend, texts, write_config
from test_front_snapshot import FROM_SNAPSHOT, listed_once, snapshots, starts
from test_start_order import SpawnCounter
from test_warm_catalog import names

from vmcp import faststart
from vmcp.config import load_config
from vmcp.gateway.gateway import Gateway
from vmcp.plugins import get_plugin_manager

pytestmark = pytest.mark.anyio

#: what the gateway logs for each backend it took over from the head start
TOOK_OVER = "spawned by the head start"


def ended(pid: int) -> bool:
    """True when process ``pid`` is gone (or dead, waiting for its parent to reap it)."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def snapshot_of_two_starts(tmp_path: Path) -> tuple[Path, list[str], object]:
    """Start twice (the first start's view changes under it as it writes the warm
    catalog, so the second keeps the snapshot): the snapshot, the tools, the starts."""
    home = tmp_path / "home"
    config = write_config(tmp_path / "vmcp.toml", {
        "alpha": backend(ALPHA, env={"ALPHA_GREETING": "hello ${USER}"}),
        "beta": backend(BETA, replicas=2)})
    run = starts(home, config, tmp_path)
    await listed_once(run(1))
    listed = await listed_once(run(2))
    [snapshot] = snapshots(home)
    return snapshot, listed, run


async def test_a_start_takes_over_the_backends_its_head_start_spawned(tmp_path: Path) -> None:
    snapshot, listed, run = await snapshot_of_two_starts(tmp_path)
    spawns = json.loads(snapshot.read_text())["spawns"]
    assert len(spawns) == 3  # alpha and beta's two replicas
    # written as the configuration has them: nothing from the environment
    assert ["ALPHA_GREETING", "hello ${USER}"] in [pair for s in spawns for pair in s["env"]]
    third = run(3)  # type: ignore[operator]
    async with third.connect() as session:
        assert await names(session) == listed
        assert texts(await session.call_tool("alpha__echo", {"text": "hi"})) == ["alpha: hi"]
        for _ in range(2):  # each replica
            result = await session.call_tool("beta__echo", {"text": "hi"})
            assert not result.is_error
    log = third.log_text()
    assert log.count(TOOK_OVER) == 3
    assert "mount alpha: took over" in log and "mount beta: took over" in log


async def test_a_recorded_spawn_the_configuration_no_longer_makes_is_killed(
    tmp_path: Path,
) -> None:
    snapshot, _, run = await snapshot_of_two_starts(tmp_path)
    kept = json.loads(snapshot.read_text())
    stray = tmp_path / "stray.pid"
    [alpha] = [s for s in kept["spawns"] if s["args"] == [str(ALPHA)]]
    alpha.update(command="sh", args=["-c", f"echo $$ > {stray}; exec sleep 60"])
    snapshot.write_text(json.dumps(kept))
    third = run(3)  # type: ignore[operator]
    async with third.connect() as session:
        assert texts(await session.call_tool("alpha__echo", {"text": "hi"})) == ["alpha: hi"]
    log = third.log_text()
    assert log.count(TOOK_OVER) == 2
    assert "mount alpha: took over" not in log
    assert ended(int(stray.read_text()))


async def test_a_snapshot_others_can_write_spawns_and_answers_nothing(tmp_path: Path) -> None:
    snapshot, listed, run = await snapshot_of_two_starts(tmp_path)
    snapshot.chmod(0o666)
    third = run(3)  # type: ignore[operator]
    async with third.connect() as session:
        assert await names(session) == listed
    log = third.log_text()
    assert TOOK_OVER not in log
    assert FROM_SNAPSHOT not in log


@pytest.mark.parametrize("preparing", [False, True])
async def test_no_spawn_is_recorded_while_a_plugin_prepares_the_backends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preparing: bool
) -> None:
    """A ``vmcp_backend_prepare`` plugin may add to any backend's environment: a head start
    could never be taken, so none is recorded. (The gateway runs in the test's loop, as a
    stdio start would.)"""
    monkeypatch.setenv("VMCP_HOME", str(tmp_path / "home"))
    path = write_config(tmp_path / "vmcp.toml",
                        {"alpha": backend(ALPHA), "beta": backend(BETA, replicas=2)})
    start = faststart.launch(["--config", str(path), "start"], os.environ, str(tmp_path))
    assert start is not None
    monkeypatch.setattr(faststart, "LAUNCH", start)
    counter = SpawnCounter()
    manager = get_plugin_manager()
    if preparing:
        manager.register(counter, name="test-preparing")
    gateway = Gateway(load_config(path)[0])
    try:
        with anyio.fail_after(CONNECT_TIMEOUT):
            await gateway.start()
    finally:
        await gateway.stop()
        if preparing:
            manager.unregister(counter)
    recorded = (faststart.load(start) or {}).get("spawns", [])
    assert len(recorded) == (0 if preparing else 3)
    assert counter.spawns == (3 if preparing else 0)
