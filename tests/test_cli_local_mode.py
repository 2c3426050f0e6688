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


def test_call_starts_only_the_mount_it_needs(tmp_path: Path) -> None:
    marker = tmp_path / "other-started"
    touch = f"open({str(marker)!r}, 'w')"
    _configure(tmp_path, f'[servers.alpha]\ncommand = {json.dumps(sys.executable)}\n'
                         f'args = [{json.dumps(str(FIXTURES / "alpha.py"))}]\n'
                         f'[servers.other]\ncommand = {json.dumps(sys.executable)}\n'
                         f'args = ["-c", {json.dumps(touch)}]\n')
    done = _vmcp(tmp_path, "call", "alpha__echo", "text=hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "alpha: hi"
    assert not marker.exists()
    assert "other" not in done.stderr


def test_tools_shows_what_a_persona_sees_and_read_only_warns(tmp_path: Path) -> None:
    _configure(tmp_path, f'[servers.alpha]\ncommand = {json.dumps(sys.executable)}\n'
                         f'args = [{json.dumps(str(FIXTURES / "alpha.py"))}]\n')
    for args in (("persona", "create", "coder"), ("persona", "coder", "enable", "alpha"),
                 ("persona", "coder", "deny-tool", "alpha", "e*")):
        assert _vmcp(tmp_path, *args).returncode == 0
    everything = {t["name"] for t in json.loads(_vmcp(tmp_path, "tools", "--json").stdout)}
    seen = _vmcp(tmp_path, "tools", "--persona", "coder", "--json")
    assert seen.returncode == 0, seen.stderr
    names = {t["name"] for t in json.loads(seen.stdout)}
    assert "alpha__echo" in everything and "alpha__echo" not in names
    assert "alpha__add" in names and names < everything

    read_only = _vmcp(tmp_path, "persona", "coder", "read-only", "on")
    assert read_only.returncode == 0, read_only.stderr
    assert "warning: alpha hides every tool in read-only mode" in read_only.stderr
    none = _vmcp(tmp_path, "tools", "--persona", "coder", "--json")
    assert json.loads(none.stdout) == []
    assert "persona 'coder' sees no tools" in none.stderr
    unknown = _vmcp(tmp_path, "tools", "--persona", "nobody")
    assert unknown.returncode == 1 and "nobody" in unknown.stderr
