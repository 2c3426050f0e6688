"""The command line imports a command's module only when that command is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
from click.testing import CliRunner

from vmcp.cli import COMMANDS, cli


def test_every_lazy_command_resolves_to_the_command_of_that_name() -> None:
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command), name
        assert command.name == name


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--help"], env={"VMCP_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:", 1)[1].split()
    assert set(COMMANDS) <= set(listed)


def test_start_loads_neither_the_repository_nor_other_commands(tmp_path: Path) -> None:
    """Resolving ``vmcp start`` imports the gateway, not what other commands need."""
    script = textwrap.dedent(
        """
        import sys
        import click
        from vmcp.cli import cli

        cli.get_command(click.Context(cli), "start")
        loaded = sorted(name for name in sys.modules if name.startswith((
            "vmcp.repository", "vmcp.cli.install_cmd", "vmcp.cli.repo_cmd",
            "vmcp.cli.persona_cmd", "vmcp.cli.token_cmd", "vmcp.cli.client_cmd",
            "vmcp.monitoring", "prometheus_client", "aiohttp", "mcp")))
        print(loaded)
        print("vmcp.gateway.runner" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "VMCP_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "True"]


def test_help_shows_each_commands_first_sentence_whole() -> None:
    from click.testing import CliRunner

    from vmcp.cli import cli

    out = CliRunner().invoke(cli, ["--help"], terminal_width=100).output
    commands = out.split("Commands:", 1)[1].split("Exit codes", 1)[0]
    assert "..." not in commands
    flat = " ".join(commands.split())
    assert "anything else is a string)" in flat
    assert "status Is a gateway running with this home, and how is it doing (exit 1: not " \
           "running)" in flat


def test_every_group_lists_whole_summaries(tmp_path: Path) -> None:
    """``vmcp GROUP --help`` of each group, built-in or a plugin's (``auth``), wraps its
    commands' first sentences instead of cutting them with "..."."""
    script = textwrap.dedent(
        """
        import json
        import click
        from click.testing import CliRunner
        from vmcp.cli import cli
        from vmcp.plugins import register_plugin_commands

        register_plugin_commands(cli)
        ctx = click.Context(cli)
        helps = {}
        for name in cli.list_commands(ctx):
            if isinstance(cli.get_command(ctx, name), click.Group):
                helps[name] = CliRunner().invoke(cli, [name, "--help"], terminal_width=80).output
        print(json.dumps(helps))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "VMCP_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    helps = json.loads(result.stdout)
    assert {"auth", "client", "config", "persona", "plugins", "repo", "token", "audit"} \
        <= set(helps)
    for name, text in helps.items():
        assert "Commands" in text, name
        cut = [line for line in text.split("Commands", 1)[1].splitlines()
               if line.endswith("...")]  # click's cut of a summary
        assert not cut, f"vmcp {name} --help: {cut}"
    flat = " ".join(helps["persona"].split())
    assert "list List personas; unreadable persona files are reported (exit status 1)" in flat
    assert "(auto), or the gateway's tool_exposure (default)" in flat


def test_start_with_the_plugins_commands_loads_no_sdk(tmp_path: Path) -> None:
    """What ``python -m vmcp start`` imports once every installed plugin added its commands:
    ``vmcp auth`` (the http plugin's) is named, not imported, so neither the MCP SDK nor
    aiohttp nor authlib is loaded before the gateway starts."""
    script = textwrap.dedent(
        """
        import sys
        import click
        from vmcp.cli import cli
        from vmcp.plugins import register_plugin_commands

        register_plugin_commands(cli)
        cli.get_command(click.Context(cli), "start")
        print("auth" in cli.list_commands(click.Context(cli)))
        print(sorted({name.split(".")[0] for name in sys.modules
                      if name.split(".")[0] in ("mcp", "mcp_types", "aiohttp", "authlib")}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "VMCP_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["True", "[]"]


def _loaded_after(script: str, tmp_path: Path, prefixes: tuple[str, ...]) -> list[str]:
    """Run ``script`` in a fresh interpreter; the loaded modules starting with ``prefixes``."""
    check = script + textwrap.dedent(
        f"""
        import sys
        print(sorted(m for m in sys.modules if m.startswith({prefixes!r})))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "VMCP_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"'))


def test_the_command_line_and_its_hook_plugins_load_no_pydantic(tmp_path: Path) -> None:
    """``import vmcp.cli`` and loading every installed hook plugin (what every command does
    first) import neither pydantic nor aiohttp nor the MCP SDK."""
    script = textwrap.dedent(
        """
        import vmcp.cli
        from vmcp.plugins import get_plugin_manager

        assert len(get_plugin_manager().list_name_plugin()) >= 4  # audit, oauth, otel, console
        """
    )
    assert _loaded_after(script, tmp_path, ("pydantic", "aiohttp", "mcp", "vmcp.config")) == []


def test_a_gateway_built_for_vmcp_start_loads_only_what_it_uses(tmp_path: Path) -> None:
    """Up to the first backend spawn, ``vmcp start`` with the default settings imports none of
    what only some gateways use: personas, workers, the audit trail, the console's settings,
    AES-GCM for 2026-07-28 request states, the tool search index, log files' handlers."""
    config = tmp_path / "vmcp.toml"
    config.write_text('[servers.a]\ncommand = "true"\n', encoding="utf-8")
    script = textwrap.dedent(
        f"""
        import click
        from pathlib import Path
        from vmcp.cli import cli
        from vmcp.config import load_config
        from vmcp.gateway.gateway import Gateway

        cli.get_command(click.Context(cli), "start")
        Gateway(load_config(Path({str(config)!r}))[0])
        """
    )
    loaded = _loaded_after(script, tmp_path, (
        "vmcp.persona", "vmcp.control.workers", "vmcp.audit.trail", "vmcp.audit.middleware",
        "vmcp_ui_console.settings", "cryptography", "sqlite3", "logging.handlers",
        "vmcp.cli.pin_review", "vmcp.control.mounttable"))
    assert loaded == []
