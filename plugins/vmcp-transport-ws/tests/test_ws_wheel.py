"""Installing the built wheel is all it takes: a fresh venv with ``vmcp``, then the plugin."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
#: seconds for one uv or vmcp command (they take about 1-3 s with a warm uv cache)
COMMAND_TIMEOUT = 120


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL, check=False)


def _ok(finished: subprocess.CompletedProcess[str]) -> str:
    assert finished.returncode == 0, f"{finished.args} failed:\n{finished.stderr}"
    return finished.stdout


def test_fresh_venv_gets_the_ws_driver_from_the_wheel(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["VMCP_HOME"] = str(tmp_path / "home")
    dist = tmp_path / "dist"
    _ok(_run([uv, "build", "--package", "vmcp-transport-ws", "--wheel", "--out-dir", str(dist)],
             ROOT, env))
    [wheel] = dist.glob("vmcp_transport_ws-*.whl")
    venv = tmp_path / "venv"
    _ok(_run([uv, "venv", str(venv), "--python", sys.executable], tmp_path, env))
    python = str(venv / "bin" / "python")
    vmcp = str(venv / "bin" / "vmcp")
    # the plugin depends on vmcp-transport-http (its OAuth client), not on PyPI either
    _ok(_run([uv, "pip", "install", "--python", python, str(ROOT),
              str(ROOT / "plugins" / "vmcp-transport-http")], tmp_path, env))

    # without the plugin, asking for the transport names the package that provides it
    config = tmp_path / "vmcp.toml"
    config.write_text("[servers]\n", encoding="utf-8")
    refused = _run([vmcp, "--config", str(config), "start", "--transport", "ws"], tmp_path, env)
    assert refused.returncode == 1
    assert "no driver 'ws' in vmcp.transports" in refused.stderr
    assert "provided by the package vmcp-transport-ws" in refused.stderr
    assert "not on PyPI" in refused.stderr

    _ok(_run([uv, "pip", "install", "--python", python, str(wheel)], tmp_path, env))
    records = json.loads(_ok(_run([vmcp, "plugins", "list", "--json"], tmp_path, env)))
    [record] = [r for r in records if r["name"] == "vmcp-transport-ws"]
    assert record["drivers"] == ["vmcp.transports:ws"]
    assert record["status"] == "ok"
