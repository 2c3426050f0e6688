"""The head start (``vmcp.headstart``): backends spawned from the last start's record, on
real pipes, taken only by a launch that is exactly theirs, and killed when nobody takes
them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmcp import headstart
from vmcp.config import expand_vars
from vmcp.headstart import HeadStart, claim, expand, release, spawn, template


@pytest.fixture(autouse=True)
def nothing_left_waiting() -> Iterator[None]:
    """Every test ends with no head start alive, whatever it left."""
    yield
    release()


def environment(**extra: str) -> dict[str, str]:
    """This process's environment with ``extra``, as a backend's is built."""
    return {**os.environ, **extra}


def spawned(command: str, args: list[str], cwd: str | None = None,
            env: dict[str, str] | None = None, **environ: str) -> HeadStart:
    """Spawn one recorded backend and return its head start."""
    spawn([template(command, args, cwd, env or {})], environment(**environ))
    [head] = headstart.WAITING
    return head


def output(head: HeadStart) -> bytes:
    """Everything the backend writes on its stdout until it exits."""
    os.close(head.stdin)
    head.stdin = -1
    chunks = []
    while chunk := os.read(head.stdout, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("value", [
    "plain", "${A}", "x${A}y${B}z", "${UNSET}", "${A", "$A", "${}", "${1A}", "${A B}",
    "${A${B}}", "${${A}}", "}${A}{", "${_x1}", "${é}", "$${A}}",
])
def test_expansion_is_the_configurations(value: str) -> None:
    env = {"A": "1", "B": "two", "_x1": "u", "é": "no"}
    assert expand(value, env) == expand_vars(value, env)


def test_a_backend_is_taken_only_by_its_exact_launch(tmp_path: Path) -> None:
    head = spawned("sh", ["-c", "echo \"$WHO in $(pwd)\"; cat"], str(tmp_path),
                   {"WHO": "${VMCP_T_NAME}-x"}, VMCP_T_NAME="alpha")
    env = environment(VMCP_T_NAME="alpha")
    env.setdefault("VMCP_PYTHON", sys.executable)
    program = ["sh", "-c", "echo \"$WHO in $(pwd)\"; cat"]
    assert claim(program, {**env, "WHO": "alpha-y"}, str(tmp_path)) is None
    assert claim(program, {**env, "WHO": "alpha-x"}, None) is None
    assert claim([*program, "more"], {**env, "WHO": "alpha-x"}, str(tmp_path)) is None
    assert claim(program, {**env, "WHO": "alpha-x"}, str(tmp_path)) is head
    assert headstart.WAITING == []
    try:
        assert output(head) == f"alpha-x in {tmp_path}\n".encode()
    finally:
        head.kill()


def test_what_nobody_takes_is_killed_and_reaped() -> None:
    head = spawned("sleep", ["60"])
    release()
    assert headstart.WAITING == []
    with pytest.raises(ChildProcessError):  # reaped: no longer this process's child
        os.waitpid(head.pid, os.WNOHANG)


def test_a_backend_that_died_before_it_was_taken_is_not_handed_out() -> None:
    head = spawned("sh", ["-c", "exit 3"])
    os.read(head.stdout, 1)  # its end of the pipe closes as it exits
    os.waitid(os.P_PID, head.pid, os.WEXITED | os.WNOWAIT)
    env = environment()
    env.setdefault("VMCP_PYTHON", sys.executable)
    assert claim(["sh", "-c", "exit 3"], env, None) is None
    assert headstart.WAITING == []


@pytest.mark.parametrize(("command", "cwd"), [("/no/such/program", None),
                                            ("sh", "/no/such/folder")])
def test_a_backend_that_cannot_be_executed_is_left_to_the_gateway(command: str,
                                                                 cwd: str | None) -> None:
    head = spawned(command, [], cwd)
    env = environment()
    env.setdefault("VMCP_PYTHON", sys.executable)
    assert claim([command], env, cwd) is None  # the gateway spawns it and says what failed
    assert headstart.WAITING == []
    with pytest.raises(ChildProcessError):  # reaped
        os.waitpid(head.pid, os.WNOHANG)


@pytest.mark.parametrize("recorded", [
    {"command": "sh", "args": [1], "cwd": None, "env": []},
    {"command": "sh", "args": []},
    {"command": "sh", "args": [], "cwd": None, "env": [["A"]]},
    "sh",
])
def test_a_malformed_record_spawns_nothing(recorded: object) -> None:
    spawn([recorded], environment())
    spawn("not a list", environment())
    assert headstart.WAITING == []


def test_a_backend_gets_only_its_standard_streams_and_default_signals() -> None:
    leaked_read, leaked_write = os.pipe()
    os.set_inheritable(leaked_write, True)
    try:
        head = spawned("sh", ["-c", f"test -e /proc/$$/fd/{leaked_write} && echo leaked; "
                                    "grep SigIgn /proc/$$/status"])
        shown = output(head).decode()
    finally:
        os.close(leaked_read)
        os.close(leaked_write)
        head.kill()
    assert "leaked" not in shown
    ignored = int(shown.split()[-1], 16)
    assert ignored & (1 << 12 | 1 << 24) == 0  # SIGPIPE (13) and SIGXFSZ (25) are not
