"""The ``vmcp`` command line. Commands are thin: they call the layers, never hold logic."""

from __future__ import annotations

import click

from vmcp import __version__
from vmcp.cli.lazy import LazyGroup

#: every built-in command, imported only when it runs or is listed (``vmcp start`` loads
#: the gateway and none of the repository, persona or operations code). ``mount`` and
#: ``unmount`` are the operations' own: they act on the running gateway and hand installed
#: servers on to the install commands' versions.
COMMANDS: dict[str, str] = {
    "start": "vmcp.cli.gateway_cmd:start_command",
    "list": "vmcp.cli.gateway_cmd:list_command",
    "info": "vmcp.cli.gateway_cmd:info_command",
    "config": "vmcp.cli.config_cmd:config_group",
    "plugins": "vmcp.cli.plugins_cmd:plugins_group",
    "persona": "vmcp.cli.persona_cmd:persona_group",
    "token": "vmcp.cli.token_cmd:token_group",
    "repo": "vmcp.cli.repo_cmd:repo_group",
    "search": "vmcp.cli.repo_cmd:search_command",
    "show": "vmcp.cli.repo_cmd:show_command",
    "install": "vmcp.cli.install_cmd:install_command",
    "installed": "vmcp.cli.install_cmd:installed_command",
    "update": "vmcp.cli.install_cmd:update_command",
    "rollback": "vmcp.cli.install_cmd:rollback_command",
    "uninstall": "vmcp.cli.install_cmd:uninstall_command",
    "pin": "vmcp.cli.version_pin_cmd:pin_command",
    "unpin": "vmcp.cli.version_pin_cmd:unpin_command",
    "stop": "vmcp.cli.ops_cmd:stop_command",
    "status": "vmcp.cli.ops_cmd:status_command",
    "reload": "vmcp.cli.ops_cmd:reload_command",
    "mount": "vmcp.cli.ops_cmd:mount_command",
    "unmount": "vmcp.cli.ops_cmd:unmount_command",
    "tools": "vmcp.cli.client_cmd:tools_command",
    "call": "vmcp.cli.client_cmd:call_command",
    "client": "vmcp.cli.clientconf_cmd:client_group",
    "add": "vmcp.cli.mounts_cmd:add_command",
    "remove": "vmcp.cli.mounts_cmd:remove_command",
    "import": "vmcp.cli.mounts_cmd:import_command",
    "export": "vmcp.cli.mounts_cmd:export_command",
    "connect": "vmcp.cli.connect_cmd:connect_command",
    "completion": "vmcp.cli.completion:completion_command",
    "audit": "vmcp.cli.audit_cmd:audit_group",
    "approve": "vmcp.cli.pin_cmd:approve_command",
}

EXIT_CODES = """\b
Exit codes: 0 done; 1 the operation failed or was refused (not running, already
running, unknown mount, a tool or backend error); 2 bad usage or an invalid configuration."""


@click.group(cls=LazyGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
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


def main() -> None:
    """Entry point of the ``vmcp`` script: adds plugin commands, then runs the CLI."""
    from vmcp.plugins import register_plugin_commands

    register_plugin_commands(cli)
    cli()
