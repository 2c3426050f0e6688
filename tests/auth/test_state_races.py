"""Concurrent commands that change one state file never lose each other's changes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from vmcp.auth.base import AuthError
from vmcp.auth.token import TokenAuth
from vmcp.auth.tokens import TokenStore
from vmcp.persona import PersonaStore

pytestmark = pytest.mark.anyio

RACERS = 8


def _vmcp(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vmcp", *args], env={**os.environ, "VMCP_HOME": str(home)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(processes: list[subprocess.Popen[str]]) -> list[str]:
    outputs = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            outputs.append(out)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return outputs


async def test_revokes_racing_creates_are_all_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    tokens = TokenStore(home / "config" / "tokens.json")
    PersonaStore(home / "config" / "personas").create("coder")
    doomed = [tokens.create("coder", timedelta(days=1)) for _ in range(RACERS)]
    driver = TokenAuth(tokens_file=str(tokens.path))  # as a running gateway holds it
    for _, token in doomed:
        await driver.authenticate({"authorization": f"Bearer {token}"})

    racers = []
    for record, _ in doomed:  # interleaved, so that reads and writes overlap
        racers.append(_vmcp(home, "token", "revoke", record.id))
        racers.append(_vmcp(home, "token", "create", "--persona", "coder"))
    outputs = _finish(racers)

    created = [out.strip() for out in outputs[1::2]]
    assert len(set(created)) == RACERS
    for _, token in doomed:
        with pytest.raises(AuthError, match="revoked"):
            await driver.authenticate({"authorization": f"Bearer {token}"})
    for token in created:
        principal = await driver.authenticate({"authorization": f"Bearer {token}"})
        assert principal.persona == "coder"
    assert len(tokens.load()) == RACERS


def test_persona_changes_racing_are_all_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "vmcp.toml").write_text(
        "".join(f'[servers.s{i}]\ncommand = "true"\n' for i in range(RACERS)), "utf-8")
    store = PersonaStore(home / "config" / "personas")
    store.create("team")
    _finish([_vmcp(home, "persona", "team", "enable", f"s{i}") for i in range(RACERS)])
    assert sorted(store.load("team").servers) == sorted(f"s{i}" for i in range(RACERS))


async def test_a_rewrite_in_the_same_tick_is_seen(tmp_path: Path) -> None:
    """A revocation whose file has the same inode number, size and mtime as the version the
    gateway read (a freed inode reused within one timestamp tick) still takes effect."""
    tokens = TokenStore(tmp_path / "tokens.json")
    record, token = tokens.create("coder", timedelta(days=1))
    driver = TokenAuth(tokens_file=str(tokens.path))
    assert (await driver.authenticate({"authorization": f"Bearer {token}"})).persona == "coder"
    before = tokens.path.stat()
    text = tokens.path.read_text("utf-8")
    with tokens.path.open("r+", encoding="utf-8") as fh:  # same inode, same size
        fh.write(text.replace(record.sha256, "0" * 64))
    os.utime(tokens.path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = tokens.path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino, before.st_size, before.st_mtime_ns)
    with pytest.raises(AuthError, match="revoked"):
        await driver.authenticate({"authorization": f"Bearer {token}"})
