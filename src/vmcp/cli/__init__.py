"""The ``vmcp`` command line. Commands are thin: they call the layers, never hold logic."""

from __future__ import annotations

import click

from vmcp import __version__
from vmcp.cli.client_cmd import call_command, tools_command
from vmcp.cli.config_cmd import config_group
from vmcp.cli.gateway_cmd import info_command, list_command, start_command
from vmcp.cli.install_cmd import INSTALL_COMMANDS
from vmcp.cli.ops_cmd import (
    mount_command,
    reload_command,
    status_command,
    stop_command,
    unmount_command,
)
from vmcp.cli.persona_cmd import persona_group
from vmcp.cli.plugins_cmd import plugins_group
from vmcp.cli.repo_cmd import repo_group, search_command, show_command
from vmcp.cli.token_cmd import token_group

EXIT_CODES = """\b
Exit codes: 0 done; 1 the operation failed or was refused (not running, already
running, unknown mount, a tool or backend error); 2 bad usage or an invalid configuration."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="vmcp")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=str),
    envvar="VMCP_CONFIG",
    help="Configuration file (default: $VMCP_HOME/config/vmcp.toml).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """vmcp: many MCP servers, shown to any MCP client as one."""
    ctx.obj = {"config_path": config_path}


cli.add_command(start_command)
cli.add_command(list_command)
cli.add_command(info_command)
cli.add_command(config_group)
cli.add_command(plugins_group)
cli.add_command(persona_group)
cli.add_command(token_group)
cli.add_command(repo_group)
cli.add_command(search_command)
cli.add_command(show_command)
# mount and unmount come last: they act on the running gateway and take over the install
# commands' own (to which they hand installed servers).
for _command in (*INSTALL_COMMANDS, stop_command, status_command, reload_command,
                 tools_command, call_command, mount_command, unmount_command):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``vmcp`` script: adds plugin commands, then runs the CLI."""
    from vmcp.plugins import register_plugin_commands

    register_plugin_commands(cli)
    cli()
