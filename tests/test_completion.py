"""``vmcp completion``: the scripts, and the mount ids, persona names and commands they
complete (asked of ``vmcp`` the way the scripts ask it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

#: the `vmcp` script (the completion scripts run it by name; `python -m vmcp` is not it)
VMCP = Path(sys.executable).parent / "vmcp"


def _complete(home: Path, words: str) -> list[str]:
    env = {**os.environ, "VMCP_HOME": str(home), "_VMCP_COMPLETE": "bash_complete",
           "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    env.pop("VMCP_CONFIG", None)
    done = subprocess.run([str(VMCP)], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if line]


def _vmcp(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vmcp", *args], capture_output=True,
                          text=True, env={**os.environ, "VMCP_HOME": str(home)}, timeout=60,
                          check=False)


def test_mount_ids_personas_and_commands_complete(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "servers.toml").write_text(
        '[servers.alpha]\ncommand = "a"\n[servers.alps]\ncommand = "b"\n'
        '[servers.beta]\ncommand = "c"\n', "utf-8")
    assert _complete(tmp_path, "vmcp info al") == ["alpha", "alps"]
    assert _complete(tmp_path, "vmcp unmount b") == ["beta"]
    assert _complete(tmp_path, "vmcp persona coder enable ") == ["alpha", "alps", "beta"]
    assert _vmcp(tmp_path, "persona", "create", "coder").returncode == 0
    assert _vmcp(tmp_path, "persona", "create", "reviewer").returncode == 0
    assert _complete(tmp_path, "vmcp persona show c") == ["coder"]
    assert _complete(tmp_path, "vmcp start --persona ") == ["coder", "reviewer"]
    assert "import" in _complete(tmp_path, "vmcp im")
    # tool names come from a running gateway only; none runs here
    assert _complete(tmp_path, "vmcp call ") == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_scripts_are_printed_for_each_shell(tmp_path: Path, shell: str) -> None:
    done = _vmcp(tmp_path, "completion", shell)
    assert done.returncode == 0, done.stderr
    assert "_VMCP_COMPLETE" in done.stdout
    binary = shutil.which(shell)
    if binary is not None and shell != "fish":
        checked = subprocess.run([binary, "-n"], input=done.stdout, capture_output=True,
                                 text=True, timeout=30, check=False)
        assert checked.returncode == 0, checked.stderr
