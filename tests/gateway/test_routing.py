"""The routing engine against real replica processes: spreading, failover, retries of safe
requests only, restarts, timeouts with cancellation, circuit breakers and load shedding.

Backends are copies of ``tests/fixtures/servers/replica.py``; every answer names the
process, so tests can tell replicas apart. Faults are real: a replica exits mid-call, or
never answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from gateway_harness import EVENT_TIMEOUT, FIXTURE_SERVERS, Gateway, Notifications, backend, texts
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

REPLICA = FIXTURE_SERVERS / "replica.py"
FAST_RESTART = {"initial_backoff": 0.05, "max_backoff": 0.2}
NO_HEALTH = {"interval": 0}


def replicated(count: int, **settings: Any) -> dict[str, dict[str, Any]]:
    """One mount ``rep`` running ``count`` replicas."""
    return {"rep": backend(REPLICA, **{"replicas": count, "restart": FAST_RESTART,
                                       "health": NO_HEALTH, **settings})}


async def pid_of(session: ClientSession) -> str:
    """The pid of the replica that answered."""
    return texts(await session.call_tool("rep__whoami", {}))[0]


async def wait_for_pids(session: ClientSession, wanted: Callable[[set[str]], bool]) -> set[str]:
    """Call ``whoami`` until the pids seen satisfy ``wanted``.

    A replica's restart is not announced to clients while its mount stays up, so the test
    asks; each call is a real round trip and the wait is bounded.
    """
    seen: set[str] = set()
    with anyio.fail_after(EVENT_TIMEOUT):
        while not wanted(seen):
            seen.add(await pid_of(session))
            await anyio.sleep(0.02)
    return seen


async def test_calls_spread_over_replicas(make_gateway: Callable[..., Gateway]) -> None:
    async with make_gateway(replicated(3)).connect() as session:
        pids = [await pid_of(session) for _ in range(6)]
    assert len(set(pids)) == 3
    assert pids[:3] == pids[3:]  # round robin


async def test_killed_replica_fails_the_write_at_once_and_restarts(
    make_gateway: Callable[..., Gateway],
) -> None:
    async with make_gateway(replicated(2)).connect() as session:
        before = await wait_for_pids(session, lambda seen: len(seen) == 2)
        with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as failed:
            await session.call_tool("rep__die", {})
        assert failed.value.error.code == -32000
        # The survivor keeps answering, and the dead replica comes back as a new process.
        after = await wait_for_pids(session, lambda seen: len(seen - before) >= 1 and
                                    len(seen & before) >= 1)
        assert len(after - before) == 1


async def test_single_replica_restart_brings_its_tools_back(
    make_gateway: Callable[..., Gateway],
) -> None:
    """Within the flap grace period its tools stay listed: one list_changed, on return."""
    notifications = Notifications()
    gateway = make_gateway(replicated(1))
    async with gateway.connect(message_handler=notifications) as session:
        first = await pid_of(session)
        with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError):
            await session.call_tool("rep__die", {})
        await notifications.wait_for(
            lambda n: isinstance(n, types.ToolListChangedNotification), count=1)
        names = [tool.name for tool in (await session.list_tools()).tools]
        assert "rep__whoami" in names
        assert await pid_of(session) != first


async def test_flapping_replica_is_restarted_until_it_crash_loops(
    make_gateway: Callable[..., Gateway],
) -> None:
    notifications = Notifications()
    gateway = make_gateway(replicated(1, env={"DIE_AFTER": "0.5"}, restart={
        "initial_backoff": 0.05, "max_backoff": 0.1, "max_restarts": 2, "window_seconds": 60}),
        {"flap_grace": 0})  # every loss shows at once
    async with gateway.connect(message_handler=notifications):
        # Its tools leave, come back, leave, come back, and leave for good: five changes.
        await notifications.wait_for(
            lambda n: isinstance(n, types.ToolListChangedNotification), count=5,
            timeout=4 * EVENT_TIMEOUT)
        with anyio.fail_after(EVENT_TIMEOUT):
            while True:  # the supervisor gives up after the crash loop; status tells
                status = await anyio.run_process(
                    [sys.executable, *gateway.command_args("status", "--json")],
                    env={**os.environ, **gateway.env()})
                replica = json.loads(status.stdout)["mounts"][0]["replicas"][0]
                if replica["state"] == "failed":
                    break
                await anyio.sleep(0.1)


async def test_read_is_retried_on_another_replica_but_write_is_not(
    make_gateway: Callable[..., Gateway], tmp_path: Path,
) -> None:
    marker = tmp_path / "marker"
    gateway = make_gateway(replicated(2, env={"MARKER": str(marker)},
                                      restart={"enabled": False}))
    async with gateway.connect() as session:
        marker.touch()
        with anyio.fail_after(EVENT_TIMEOUT):
            read = await session.read_resource("replica://flaky")
        assert not marker.exists()  # one replica died reading it...
        assert read.contents[0].text.startswith("read by ")  # ...and the other answered

        async with make_gateway(replicated(2, env={"MARKER": str(marker)},
                                           restart={"enabled": False})).connect() as other:
            marker.touch()
            with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as failed:
                await other.call_tool("rep__die_once", {})
            assert failed.value.error.code == -32000  # not repeated on the survivor
            assert not marker.exists()
            assert texts(await other.call_tool("rep__die_once", {})) == ["survived"]


async def test_hung_call_times_out_cancels_and_opens_the_circuit(
    make_gateway: Callable[..., Gateway], tmp_path: Path,
) -> None:
    cancel_log = tmp_path / "cancelled"
    gateway = make_gateway(replicated(
        1, timeout=0.5, env={"CANCEL_LOG": str(cancel_log)},
        circuit={"failure_threshold": 2, "open_seconds": 60}))
    async with gateway.connect() as session:
        for _ in range(2):
            with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as timed_out:
                await session.call_tool("rep__hang", {})
            assert timed_out.value.error.code == -32001
        with anyio.fail_after(EVENT_TIMEOUT):
            # The backend notes each cancellation in a file: no event reaches the test.
            while len(cancel_log.read_text().splitlines() if cancel_log.exists() else []) < 2:  # noqa: ASYNC110
                await anyio.sleep(0.02)
        with anyio.fail_after(1.0), pytest.raises(MCPError) as refused:
            await session.call_tool("rep__whoami", {})
        assert refused.value.error.code == -32000
        assert "rep" in refused.value.error.message
        assert "circuit open" in refused.value.error.message


@pytest.mark.parametrize("max_timeout", [None, 10.0])
async def test_progress_extends_a_call_up_to_its_hard_maximum(
    make_gateway: Callable[..., Gateway], max_timeout: float | None,
) -> None:
    settings: dict[str, Any] = {"timeout": 0.5}
    if max_timeout is not None:
        settings["max_timeout"] = max_timeout
    steps: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append(progress)

    async with make_gateway(replicated(1, **settings)).connect() as session:
        call = session.call_tool("rep__paced", {"steps": 5, "interval": 0.25},
                                 progress_callback=on_progress)
        with anyio.fail_after(EVENT_TIMEOUT):
            if max_timeout is None:  # 1.25 s of work against a 0.5 s timeout
                with pytest.raises(MCPError) as timed_out:
                    await call
                assert timed_out.value.error.code == -32001
            else:  # each progress notification restarts the 0.5 s
                assert texts(await call) == ["paced"]
                assert steps == [1, 2, 3, 4, 5]


async def test_overload_fails_fast(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway(replicated(1, max_in_flight=1, max_queue=0))
    async def hold_the_slot() -> None:
        while True:  # a whoami may take the slot first: then this call is the refused one
            with contextlib.suppress(MCPError):
                await session.call_tool("rep__hang", {})

    async with gateway.connect() as session, anyio.create_task_group() as tg:
        tg.start_soon(hold_the_slot)
        with anyio.fail_after(EVENT_TIMEOUT):
            while True:  # until the hanging call holds the only slot
                try:
                    await session.call_tool("rep__whoami", {})
                except MCPError as exc:
                    assert "overloaded" in exc.error.message
                    break
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()


async def test_ring_hash_keeps_a_session_on_one_replica(
    make_gateway: Callable[..., Gateway],
) -> None:
    async with make_gateway(replicated(3, balancer="ring_hash")).connect() as session:
        pids = {await pid_of(session) for _ in range(6)}
    assert len(pids) == 1


async def test_info_shows_replica_health(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway(replicated(2))
    with anyio.fail_after(30):
        result = await anyio.run_process(
            [sys.executable, *gateway.command_args("info", "rep")],
            env={**os.environ, **gateway.env()})
    out = result.stdout.decode()
    assert "replica rep-0: up, healthy, circuit closed" in out
    assert "replica rep-1: up, healthy, circuit closed" in out
    assert "whoami" in out
