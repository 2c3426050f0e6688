"""A configuration file that cannot be used is a located error and exit 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CASES = {
    "bad-utf8": (b'[gateway]\nname = "\xff\xfe"\n',
                 "line 2, column 9: not valid UTF-8 (byte 0xff)"),
    "deep-array": (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n",
                   "not valid TOML: arrays or tables nested too deeply"),
    "servers-not-table": (b"servers = 5\n",
                          "servers: must be a table ([servers.<id>] sections), not int"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_unusable_config_is_a_located_error(tmp_path: Path, case: str) -> None:
    content, message = CASES[case]
    config = tmp_path / "config" / "vmcp.toml"
    config.parent.mkdir(parents=True)
    config.write_bytes(content)
    done = subprocess.run([sys.executable, "-m", "vmcp", "list"], capture_output=True,
                          text=True, env={**os.environ, "VMCP_HOME": str(tmp_path)},
                          timeout=120, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{config}: {message}" in done.stderr


def test_servers_file_with_servers_not_a_table(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    servers = tmp_path / "config" / "servers.toml"
    servers.write_text('servers = "x"\n', "utf-8")
    done = subprocess.run([sys.executable, "-m", "vmcp", "list"], capture_output=True,
                          text=True, env={**os.environ, "VMCP_HOME": str(tmp_path)},
                          timeout=120, check=False)
    assert done.returncode == 2
    assert f"{servers}: servers: must be a table" in done.stderr
