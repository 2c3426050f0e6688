"""``vmcp tools`` / ``vmcp call`` with no gateway running: what they declare and how they fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "servers"


def _vmcp(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vmcp", *args], capture_output=True, text=True,
                          env={**os.environ, "VMCP_HOME": str(home)}, timeout=120, check=False)


def _configure(home: Path, text: str) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "vmcp.toml").write_text(text, "utf-8")


def test_call_declares_no_capability_it_cannot_serve(tmp_path: Path) -> None:
    _configure(tmp_path, f'[servers.caps]\ncommand = {json.dumps(sys.executable)}\n'
                         f'args = [{json.dumps(str(FIXTURES / "caps.py"))}]\n')
    done = _vmcp(tmp_path, "call", "caps__declared", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["structuredContent"] == {"capabilities": {}}


def test_tools_fails_when_no_mount_started(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-server"
    _configure(tmp_path, f"[servers.gone]\ncommand = {json.dumps(str(missing))}\n")
    done = _vmcp(tmp_path, "tools", "--json")
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"no mount started (gone: cannot start '{missing}'" in done.stderr


def test_tools_with_nothing_configured_is_an_empty_list(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "servers.toml").write_text("", "utf-8")
    _configure(tmp_path, "")
    done = _vmcp(tmp_path, "tools", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
