"""The front snapshot: ``vmcp start`` on stdio answers ``initialize`` and the first
``tools/list`` from what the last start showed, before anything heavy is imported, and the
real gateway takes the session over from there.

``alpha`` runs behind a gate (``fixtures/servers/gated.py``): "the backends are not up" is
a state the test holds. Whether an answer came from the snapshot is read from the
gateway's log (``--log-level info``), which names what the fast start answered.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from gateway_harness import (
    ALPHA,
    BETA,
    EVENT_TIMEOUT,
    FIXTURE_SERVERS,
    Gateway,
    Notifications,
    backend,
    texts,
    write_config,
)
from mcp import StdioServerParameters
from mcp.client.session import ClientRequestContext
from test_warm_catalog import call_while_releasing, gated, make_gate, names, release

from vmcp.persona import PersonaStore

pytestmark = pytest.mark.anyio

#: what the gateway logs when the fast start answered the handshake and the list
FROM_SNAPSHOT = "answered initialize, tools/list from the front snapshot"


@dataclass
class Start(Gateway):
    """The harness gateway, started as ``vmcp start --log-level info [--persona P]``."""

    persona: str | None = None

    def server_parameters(self) -> StdioServerParameters:
        """``vmcp --config C start --log-level info [--persona P]``."""
        extra = ["--persona", self.persona] if self.persona else []
        return StdioServerParameters(command=sys.executable, env=self.env(), args=self.command_args(
            "start", "--log-level", "info", *extra))


def starts(home: Path, config: Path, tmp_path: Path, persona: str | None = None) -> Any:
    """Factory: run number -> a :class:`Start` of ``config`` on ``home``, logging apart."""
    return lambda run: Start(home=home, config=config, log=tmp_path / f"run{run}.log",
                             persona=persona)


def snapshots(home: Path) -> list[Path]:
    """The front snapshot files kept in ``home``."""
    folder = home / "cache" / "front"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


async def listed_once(start: Start, gate: Path | None = None) -> list[str]:
    """Start, list the tools, ping, stop (letting a gated backend through meanwhile).

    The ping is the real gateway's to answer: it has taken over (and logged what the fast
    start answered) before the client leaves.
    """
    async with anyio.create_task_group() as group:
        if gate is not None:
            group.start_soon(release, gate)
        async with start.connect() as session:
            listed = await names(session)
            await session.send_ping()
            return listed


async def sampling(context: ClientRequestContext,
                   params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    """A client that can sample: answers ``42``."""
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text="42"), model="test-model")


async def test_a_second_start_answers_from_the_snapshot_before_the_backends_are_up(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    gate = make_gate(tmp_path)
    config = write_config(tmp_path / "vmcp.toml", {"alpha": gated(gate, ALPHA),
                                                   "beta": backend(BETA)})
    run = starts(home, config, tmp_path)
    listed = await listed_once(run(1), gate)
    # the first start listed once every backend was up, after it wrote the warm catalog:
    # the files the key covers changed under it, so it kept no view (at most how it spawned
    # its backends, under a key that is stale already)
    assert [json.loads(path.read_text())["entries"] for path in snapshots(home)] in ([], [{}])
    assert await listed_once(run(2), gate) == listed
    [snapshot] = snapshots(home)
    written = snapshot.stat().st_mtime_ns

    third = run(3)
    notes = Notifications()
    async with third.connect(message_handler=notes, sampling_callback=sampling) as session:
        # alpha is still behind its gate: this list is the snapshot's
        assert await names(session) == listed
        result = await call_while_releasing(session, gate, "alpha__sample", {"prompt": "?"})
        # the gateway set the session up from the replayed initialize: it knows the client
        # can sample
        assert texts(result) == ["sampled: 42 (test-model)"]
        assert await names(session) == listed
    assert FROM_SNAPSHOT in third.log_text()
    assert not notes.matching(lambda n: isinstance(n, types.ToolListChangedNotification))
    assert snapshot.stat().st_mtime_ns == written  # the same view: not written again


async def test_a_backend_changed_since_the_snapshot_is_announced_withheld_then_approved(
    tmp_path: Path,
) -> None:
    """``described`` shows another description of its tool: the snapshot's list is shown,
    then the client hears ``list_changed`` and the tool is withheld (pinning enforced); the
    next start does not serve the old snapshot, nor the one after ``vmcp approve``."""
    home = tmp_path / "home"
    description = tmp_path / "description.txt"
    description.write_text("the first description")
    config = write_config(tmp_path / "vmcp.toml", {
        "described": backend(FIXTURE_SERVERS / "described.py", args=[
            str(FIXTURE_SERVERS / "described.py"), str(description)], pinning="enforce"),
        "beta": backend(BETA)})
    run = starts(home, config, tmp_path)
    await listed_once(run(1))
    listed = await listed_once(run(2))
    assert "described__echo" in listed and len(snapshots(home)) == 1

    description.write_text("a changed description")
    changed = run(3)
    notes = Notifications()
    async with changed.connect(message_handler=notes) as session:
        assert await names(session) == listed  # from the snapshot
        with anyio.fail_after(EVENT_TIMEOUT):
            await notes.wait_for_type(types.ToolListChangedNotification)
        assert "described__echo" not in await names(session)
    assert FROM_SNAPSHOT in changed.log_text()

    # the warm catalog and the pins changed: the snapshot that shows the tool is not served
    withheld = run(4)
    assert "described__echo" not in await listed_once(withheld)
    assert FROM_SNAPSHOT not in withheld.log_text()

    approve = await anyio.run_process(
        [sys.executable, *withheld.command_args("approve", "described")],
        env={**os.environ, **withheld.env()}, check=False)
    assert approve.returncode == 0, approve.stderr
    approved = run(5)
    assert "described__echo" in await listed_once(approved)
    assert FROM_SNAPSHOT not in approved.log_text()


async def test_a_changed_persona_or_configuration_does_not_reuse_the_snapshot(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    store = PersonaStore(home / "config" / "personas")
    dev = store.create("dev")
    dev.enable("alpha")
    dev.enable("beta")
    store.save(dev)
    config = write_config(tmp_path / "vmcp.toml", {"alpha": backend(ALPHA),
                                                   "beta": backend(BETA)})
    run = starts(home, config, tmp_path, persona="dev")
    await listed_once(run(1))
    listed = await listed_once(run(2))
    assert any(name.startswith("beta__") for name in listed)
    again = run(3)
    assert await listed_once(again) == listed
    assert FROM_SNAPSHOT in again.log_text()

    # beta is hidden from dev now: its tools are never shown from the older snapshot
    dev.disable("beta")
    store.save(dev)
    hidden = run(4)
    assert [name for name in await listed_once(hidden) if name.startswith("beta__")] == []
    assert FROM_SNAPSHOT not in hidden.log_text()

    # another configuration (the same mounts, one more setting) starts without it too
    config.write_text(config.read_text() + "\n# edited\n")
    other = run(5)
    await listed_once(other)
    assert FROM_SNAPSHOT not in other.log_text()


def line(message: dict[str, Any]) -> bytes:
    """One JSON-RPC line."""
    return json.dumps(message).encode() + b"\n"


HANDSHAKE = line({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {},
    "clientInfo": {"name": "raw", "version": "0"}}}) + line(
    {"jsonrpc": "2.0", "method": "notifications/initialized"}) + line(
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})


async def raw_run(start: Start, data: bytes, answers: int) -> list[dict[str, Any]]:
    """Start, write ``data`` at once, read ``answers`` responses, close stdin; the gateway
    must exit by itself (0)."""
    args = start.server_parameters()
    with start.log.open("a") as errlog:
        process = await anyio.open_process([args.command, *args.args],
                                           env={**os.environ, **start.env()}, stderr=errlog)
        async with process:
            assert process.stdin is not None and process.stdout is not None
            await process.stdin.send(data)
            got: list[dict[str, Any]] = []
            buffer = b""
            with anyio.fail_after(EVENT_TIMEOUT * 3):
                while len(got) < answers:
                    while b"\n" not in buffer:
                        buffer += await process.stdout.receive()
                    raw, buffer = buffer.split(b"\n", 1)
                    message = json.loads(raw)
                    if "id" in message and "method" not in message:
                        got.append(message)
            await process.stdin.aclose()
            with anyio.fail_after(EVENT_TIMEOUT * 3):
                assert await process.wait() == 0
    return got


async def test_raw_pipes_pipelined_probed_ended_early_and_a_damaged_snapshot(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    config = write_config(tmp_path / "vmcp.toml", {"beta": backend(BETA)})
    run = starts(home, config, tmp_path)
    await listed_once(run(1))
    listed = await listed_once(run(2))
    [snapshot] = snapshots(home)

    # a call written with the handshake, in one write: the fast start answers the handshake
    # and the list, the gateway the call it read along
    call = line({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                 "params": {"name": "beta__echo", "arguments": {"text": "hi"}}})
    pipelined = run(3)
    answers = await raw_run(pipelined, HANDSHAKE + call, 3)
    assert [a["id"] for a in answers] == [1, 2, 3]
    assert [t["name"] for t in answers[1]["result"]["tools"]] == listed
    assert answers[2]["result"]["content"][0]["text"] == "beta: hi"
    assert FROM_SNAPSHOT in pipelined.log_text()

    # a 2026-07-28 probe first: the gateway answers everything
    probe = line({"jsonrpc": "2.0", "id": 0, "method": "server/discover", "params": {}})
    probed = run(4)
    answers = await raw_run(probed, probe + HANDSHAKE, 3)
    assert [a["id"] for a in answers] == [0, 1, 2]
    assert "answered nothing from the front snapshot" in probed.log_text()

    # the client leaves right after the list: the gateway takes over, reads the end, exits
    ended = run(5)
    answers = await raw_run(ended, HANDSHAKE, 2)
    assert [t["name"] for t in answers[1]["result"]["tools"]] == listed
    assert FROM_SNAPSHOT in ended.log_text()

    # a damaged snapshot is ignored
    snapshot.write_text("{damaged")
    damaged = run(6)
    answers = await raw_run(damaged, HANDSHAKE, 2)
    assert [t["name"] for t in answers[1]["result"]["tools"]] == listed
    assert "from the front snapshot" not in damaged.log_text()


async def test_no_snapshot_is_kept_without_the_warm_catalog(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = write_config(tmp_path / "vmcp.toml", {"beta": backend(BETA)},
                          {"warm_catalog": False})
    run = starts(home, config, tmp_path)
    for number in (1, 2):
        await listed_once(run(number))
    assert snapshots(home) == []
