"""The fast start (``vmcp.faststart``): which starts it serves, the key over their files,
and the lines it answers from a snapshot on real pipes before it hands over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from vmcp import faststart
from vmcp.faststart import Handover, Launch, launch, load, serve, served_entries
from vmcp.transports.handover import ReplayPeer

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {},
    "clientInfo": {"name": "t", "version": "0"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
ENTRIES = {"2025-11-25": {
    "initialize": {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                   "serverInfo": {"name": "vmcp", "version": "0"}},
    "tools": {"tools": [{"name": "a__echo", "inputSchema": {"type": "object"}}]}}}


def lines(*messages: Any) -> bytes:
    """Messages as the client writes them (a string is written as it is)."""
    return b"".join((m if isinstance(m, str) else json.dumps(m)).encode() + b"\n"
                    for m in messages)


def served(data: bytes, close: bool = True) -> tuple[Handover, list[dict[str, Any]]]:
    """Run the fast start on a pipe holding ``data`` (then its end, if ``close``); the
    handover and the messages it wrote."""
    read_in, write_in = os.pipe()
    read_out, write_out = os.pipe()
    try:
        os.write(write_in, data)
        if close:
            os.close(write_in)
        handover = serve(ENTRIES, read_in, write_out)
        os.close(write_out)
        with os.fdopen(read_out, "rb") as out:
            written = [json.loads(line) for line in out.read().splitlines()]
    finally:
        os.close(read_in)
        if not close:
            os.close(write_in)
    return handover, written


def test_the_fast_start_imports_nothing_but_the_standard_library() -> None:
    code = ("import sys; before = set(sys.modules); import vmcp.faststart; "
            "print(sorted(set(sys.modules) - before))")
    imported = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                         text=True, check=True).stdout.replace("'", '"'))
    assert {name for name in imported if name.startswith("vmcp")} == {
        "vmcp", "vmcp.faststart", "vmcp.headstart"}
    heavy = {"click", "pydantic", "typing", "pathlib", "importlib.metadata", "pluggy", "asyncio"}
    assert heavy.isdisjoint(imported)


@pytest.mark.parametrize("argv", [
    ["start"], ["--config", "c.toml", "start", "-t", "stdio"], ["--config=c.toml", "start"],
    ["start", "--persona", "dev", "--log-level=info"], ["start", "--transport=stdio"],
])
def test_a_stdio_start_is_served(argv: list[str], tmp_path: Path) -> None:
    assert launch(argv, {"VMCP_HOME": str(tmp_path)}, str(tmp_path)) is not None


@pytest.mark.parametrize("argv", [
    [], ["list"], ["start", "-t", "http"], ["start", "--detach"], ["start", "-d"],
    ["start", "--workers", "2"], ["start", "--persona"], ["--help"], ["start", "--help"],
    ["--config"], ["--version"],
])
def test_any_other_command_is_the_command_lines(argv: list[str], tmp_path: Path) -> None:
    assert launch(argv, {"VMCP_HOME": str(tmp_path)}, str(tmp_path)) is None


def key_of(home: Path, cwd: Path, argv: list[str] | None = None, **env: str) -> str:
    """The key of ``vmcp --config C start`` with ``home`` (and ``env``) now."""
    start = launch(argv or ["--config", str(home / "vmcp.toml"), "start"],
                   {"VMCP_HOME": str(home), **env}, str(cwd))
    assert start is not None
    return start.key


@pytest.mark.parametrize("changed", [
    "vmcp.toml", "servers.toml", "config/personas/dev.json", "pins/alpha.json",
    "catalog/alpha.json", "installed/servers/tool",
])
def test_the_key_covers_the_configuration_and_the_state_files(
    changed: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    for name in ("vmcp.toml", "servers.toml", "config/personas/dev.json", "pins/alpha.json",
                 "catalog/alpha.json", "installed/servers/tool/manifest.json"):
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text("{}")
    before = key_of(home, tmp_path)
    assert key_of(home, tmp_path) == before
    target = home / changed
    if target.is_dir():
        (target / "another").mkdir()  # a new version beside the installed one
    else:
        target.write_text('{"changed": true}')
    assert key_of(home, tmp_path) != before


def test_the_key_covers_the_command_line_environment_and_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    before = key_of(home, tmp_path)
    config = ["--config", str(home / "vmcp.toml"), "start"]
    assert key_of(home, tmp_path, [*config, "--persona", "dev"]) != before
    assert key_of(home, tmp_path, VMCP_STATE_KEY="x") != before
    assert key_of(home, home) != before


def test_a_snapshot_is_read_only_under_its_own_key(tmp_path: Path) -> None:
    start = launch(["start"], {"VMCP_HOME": str(tmp_path)}, str(tmp_path))
    assert start is not None
    path = Path(start.path)
    path.parent.mkdir(parents=True)
    assert served_entries(load(start)) is None
    path.write_text("{not json")
    assert served_entries(load(start)) is None
    path.write_text(json.dumps({"key": "another", "entries": ENTRIES}))
    assert served_entries(load(start)) is None
    path.write_text(json.dumps({"key": start.key, "entries": ENTRIES}))
    assert served_entries(load(start)) == ENTRIES
    assert served_entries(load(Launch(start.home, start.config, start.name, "other"))) is None


def test_the_handshake_and_the_first_list_are_answered_then_handed_over() -> None:
    later = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "a__echo"}}
    data = lines(INITIALIZE, INITIALIZED, LIST, later)
    handover, written = served(data, close=False)  # handed over without waiting for more
    assert written == [
        {"jsonrpc": "2.0", "id": 1, "result": ENTRIES["2025-11-25"]["initialize"]},
        {"jsonrpc": "2.0", "id": 2, "result": ENTRIES["2025-11-25"]["tools"]}]
    assert handover.consumed == data  # the call, read with the rest, is the gateway's
    assert handover.answered == {1: ("initialize", ENTRIES["2025-11-25"]["initialize"]),
                                 2: ("tools/list", ENTRIES["2025-11-25"]["tools"])}


def test_a_ping_is_answered_before_initialize_too() -> None:
    ping = {"jsonrpc": "2.0", "id": "p", "method": "ping"}
    _, written = served(lines(ping, INITIALIZE, INITIALIZED, LIST))
    assert [m["id"] for m in written] == ["p", 1, 2]
    assert written[0]["result"] == {}


@pytest.mark.parametrize("first", [
    "{not json",
    '[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]',
    {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}},
    {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28"}}},
    {**INITIALIZE, "params": {**INITIALIZE["params"], "protocolVersion": "2024-11-05"}},
    {"jsonrpc": "2.0", "id": True, "method": "ping"},
    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
])
def test_a_line_the_snapshot_does_not_serve_is_handed_over_unanswered(first: Any) -> None:
    data = lines(first, INITIALIZE, LIST)
    handover, written = served(data)
    assert written == []
    assert handover.consumed == data and handover.answered == {}


def test_a_list_with_a_cursor_is_the_gateways() -> None:
    data = lines(INITIALIZE, INITIALIZED, {**LIST, "params": {"cursor": "x"}})
    handover, written = served(data)
    assert [m["id"] for m in written] == [1]
    assert list(handover.answered) == [1]


def test_the_input_ending_during_the_fast_start_hands_over_what_came() -> None:
    data = lines(INITIALIZE) + b'{"jsonrpc": "2.0", "id": 2, "meth'
    handover, written = served(data)
    assert [m["id"] for m in written] == [1]
    assert handover.consumed == data


class Recorder:
    """A front peer that keeps what is sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any], related_to: Any = None) -> None:
        """Keep ``message``."""
        self.sent.append(message)


def test_the_replay_drops_what_was_answered_and_announces_a_list_that_differs() -> None:
    tools = ENTRIES["2025-11-25"]["tools"]
    recorder = Recorder()
    peer = ReplayPeer(recorder, Handover(b"", {1: ("initialize", {"a": 1}),
                                               2: ("tools/list", tools)}))
    peer.send({"jsonrpc": "2.0", "id": 1, "result": {"a": 1}})
    peer.send({"jsonrpc": "2.0", "method": "notifications/message", "params": {}})
    peer.send({"jsonrpc": "2.0", "id": 2, "result": {"tools": []}})
    peer.send({"jsonrpc": "2.0", "id": 2, "result": {"tools": []}})  # a later request's
    assert recorder.sent == [
        {"jsonrpc": "2.0", "method": "notifications/message", "params": {}},
        {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"},
        {"jsonrpc": "2.0", "id": 2, "result": {"tools": []}}]

    same = Recorder()
    peer = ReplayPeer(same, Handover(b"", {2: ("tools/list", tools)}))
    peer.send({"jsonrpc": "2.0", "id": 2, "result": tools})
    assert same.sent == []


def test_the_handover_is_taken_once() -> None:
    faststart.HANDOVER = Handover(b"x", {})
    assert faststart.take_handover() is not None
    assert faststart.take_handover() is None


def test_the_key_covers_the_installed_distributions(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    packages = tmp_path / "site-packages"
    (packages / "vmcp-1.0.dist-info").mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [str(packages)])
    before = key_of(home, tmp_path)
    (packages / "vmcp-1.0.dist-info").rename(packages / "vmcp-1.1.dist-info")
    assert key_of(home, tmp_path) != before


def test_the_script_enters_through_the_fast_start() -> None:
    """(``python -m vmcp`` does too: the gateway tests start it so.)"""
    [script] = [e for e in entry_points(group="console_scripts") if e.name == "vmcp"]
    assert script.value == "vmcp.faststart:main"


def test_a_process_answers_from_a_snapshot_and_stops_quietly_on_ctrl_c(tmp_path: Path) -> None:
    """A real ``python -m vmcp start`` on a snapshot made for its command line: the answer
    is the snapshot's; Ctrl-C while it waits for the next line ends it at once, quietly."""
    home = tmp_path / "home"
    env = {**os.environ, "VMCP_HOME": str(home)}
    env.pop("VMCP_CONFIG", None)
    start = launch(["start"], env, str(tmp_path))
    assert start is not None
    Path(start.path).parent.mkdir(parents=True)
    Path(start.path).write_text(json.dumps({"key": start.key, "entries": ENTRIES}))
    process = subprocess.Popen([sys.executable, "-m", "vmcp", "start"], cwd=tmp_path, env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(lines(INITIALIZE))
        process.stdin.flush()
        answer = json.loads(process.stdout.readline())
        assert answer == {"jsonrpc": "2.0", "id": 1,
                          "result": ENTRIES["2025-11-25"]["initialize"]}
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert b"Traceback" not in err
