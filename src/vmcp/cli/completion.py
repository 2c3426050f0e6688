"""Shell completion: ``vmcp completion bash|zsh|fish`` and the values it completes.

The script click generates asks ``vmcp`` itself for candidates at each TAB. Arguments that
name a mount, a tool or a persona complete from the configuration, the running gateway and
the persona store; a source that cannot be read completes nothing rather than failing.
"""

from __future__ import annotations

from pathlib import Path

import click
from click.shell_completion import CompletionItem, get_completion_class

SHELLS = ("bash", "zsh", "fish")


def _config_path(ctx: click.Context) -> Path | None:
    raw = (ctx.find_root().obj or {}).get("config_path") or ctx.find_root().params.get(
        "config_path")
    return Path(raw) if raw else None


def complete_mount_ids(ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[CompletionItem]:
    """The configured mount ids starting with ``incomplete``."""
    from vmcp.config import ConfigError, load_config

    try:
        config, _ = load_config(_config_path(ctx))
    except (ConfigError, OSError):
        return []
    return [CompletionItem(mount_id, help=mount.description or None)
            for mount_id, mount in config.servers.items() if mount_id.startswith(incomplete)]


def complete_tool_names(ctx: click.Context, param: click.Parameter,
                        incomplete: str) -> list[CompletionItem]:
    """The tools the running gateway exposes (none when no gateway runs: starting every
    mount for a TAB would take seconds)."""
    from vmcp.control.client import ControlClient, NotRunning
    from vmcp.control.paths import RunPaths
    from vmcp.control.protocol import ControlError

    paths = RunPaths.current()
    if not paths.socket.exists():
        return []
    try:
        tools = ControlClient(paths, timeout=2.0).call("tools")
    except (NotRunning, ControlError, OSError):
        return []
    return [CompletionItem(tool["name"]) for tool in tools
            if isinstance(tool, dict) and str(tool.get("name", "")).startswith(incomplete)]


def complete_persona_names(ctx: click.Context, param: click.Parameter,
                           incomplete: str) -> list[CompletionItem]:
    """The personas of the store starting with ``incomplete``."""
    from vmcp.persona import PersonaError, PersonaStore

    try:
        names = PersonaStore.default().names()
    except (PersonaError, OSError):
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion_command(shell: str) -> None:
    """Print the completion script for SHELL; it completes commands, options, mount ids,
    tool names and persona names.

    \b
    bash: eval "$(vmcp completion bash)"            (in ~/.bashrc)
    zsh:  eval "$(vmcp completion zsh)"             (in ~/.zshrc)
    fish: vmcp completion fish > ~/.config/fish/completions/vmcp.fish
    """
    from vmcp.cli import cli

    completion_class = get_completion_class(shell)
    assert completion_class is not None  # every name in SHELLS is one click ships
    click.echo(completion_class(cli, {}, "vmcp", "_VMCP_COMPLETE").source())
