"""Configuration errors name the file and line they come from and the key that was meant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vmcp.config import MountConfig, VmcpConfig
from vmcp.configlocate import did_you_mean, fields_at, line_of


def _vmcp_list(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vmcp", "list"], capture_output=True,
                          text=True, env={**os.environ, "VMCP_HOME": str(home)}, timeout=120,
                          check=False)


def _errors(home: Path) -> list[str]:
    done = _vmcp_list(home)
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()


def test_a_typo_in_servers_toml_is_reported_there_with_line_and_suggestion(
        tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    servers = config / "servers.toml"
    servers.write_text('# mounts\n[servers.x]\ncommand = "true"\n\n[servers.x.retry]\n'
                       'atempts = 3\n', "utf-8")
    assert _errors(tmp_path) == [
        f"error: {servers}: line 6: servers.x.retry.atempts: unknown setting "
        "(did you mean 'attempts'?)"]


def test_a_misspelt_transport_is_refused_not_mounted(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "vmcp.toml").write_text(
        '[servers.x]\nurl = "http://127.0.0.1:1/mcp"\ntransport = "htp"\n', "utf-8")
    [line] = _errors(tmp_path)
    assert line.startswith(f"error: {config / 'vmcp.toml'}: line 3: servers.x.transport: "
                           "no transport 'htp' (installed: ")
    assert line.endswith("(did you mean 'http'?)")
    assert "url" not in line.split("installed")[0]  # not reported as a missing url


def test_unknown_tables_and_drivers_are_named(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    path = config / "vmcp.toml"
    path.write_text('[server.z]\ncommand = "true"\n\n[servers.y]\ncommand = "true"\n'
                    'balancer = "round_robbin"\n\n[auth]\ndriver = "tokne"\n', "utf-8")
    errors = _errors(tmp_path)
    assert f"error: {path}: line 1: server: unknown setting (did you mean 'servers'?)" in errors
    assert any(e.startswith(f"error: {path}: line 6: servers.y.balancer: no balancer "
                            "'round_robbin'") and e.endswith("(did you mean 'round_robin'?)")
               for e in errors)
    assert any(e.startswith(f"error: {path}: line 9: auth.driver: no auth driver 'tokne'")
               and e.endswith("(did you mean 'token'?)") for e in errors)
    assert len(errors) == 3


def test_line_of_follows_tables_dotted_keys_and_inline_tables() -> None:
    text = ('[gateway]\nname = "a"\n\n[servers."my-x"]\ncommand = "c"\n'
            'retry = { atempts = 3 }\nhealth.interval = 4\ns = """\n[fake]\n"""\n'
            '[servers.y]\n')
    assert line_of(text, ("gateway", "name")) == 2
    assert line_of(text, ("servers", "my-x")) == 4
    assert line_of(text, ("servers", "my-x", "retry", "atempts")) == 6
    assert line_of(text, ("servers", "my-x", "health", "interval")) == 7
    assert line_of(text, ("servers", "y", "command")) == 11
    assert line_of(text, ("fake",)) is None
    assert line_of(text, ("nothing", "here")) is None


def test_fields_at_walks_models_and_tables_of_models() -> None:
    assert "transport" in fields_at(VmcpConfig, ("servers", "x"))
    assert fields_at(VmcpConfig, ("servers", "x")) == list(MountConfig.model_fields)
    assert "attempts" in fields_at(VmcpConfig, ("servers", "x", "retry"))
    assert "hidden" in fields_at(VmcpConfig, ("servers", "x", "tools", "t"))
    assert fields_at(VmcpConfig, ("servers", "x", "env")) == []
    assert did_you_mean("comand", ["command", "args"]) == " (did you mean 'command'?)"
    assert did_you_mean("zzz", ["command", "args"]) == ""
