"""``vmcp persona``: create, inspect and change personas (what a caller may use).

Two forms share the group: ``vmcp persona COMMAND ...`` for the store as a whole, and
``vmcp persona NAME COMMAND ...`` for one persona (any first word that is not a command is
taken as a persona name).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from vmcp.cli.common import config_from_context
from vmcp.cli.completion import complete_mount_ids, complete_persona_names
from vmcp.cli.lazy import summary
from vmcp.cli.output import table
from vmcp.persona import Persona, PersonaError, PersonaStore
from vmcp.persona.model import RuleKind


class PersonaGroup(click.Group):
    """A group whose unknown first word names a persona: ``vmcp persona NAME COMMAND``."""

    def __init__(self, *args: Any, scoped: click.Group, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scoped = scoped

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Route ``NAME ...`` to the per-persona commands, with NAME as their context name."""
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return args[0], self.scoped, args[1:]
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the store commands, then the per-persona ones."""
        super().format_commands(ctx, formatter)
        rows = [
            (name, summary(command)) for name, command in sorted(self.scoped.commands.items())
        ]
        with formatter.section("Commands on one persona (vmcp persona NAME COMMAND ...)"):
            formatter.write_dl(rows)


def _store() -> PersonaStore:
    return PersonaStore.default()


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _persona_name() -> str:
    """The NAME of ``vmcp persona NAME COMMAND`` (the per-persona group's context name)."""
    ctx = click.get_current_context()
    while ctx.command is not scoped_group:
        assert ctx.parent is not None
        ctx = ctx.parent
    assert ctx.info_name is not None
    return ctx.info_name


def _known_servers(ctx: click.Context) -> list[str]:
    config, _ = config_from_context(ctx)
    return list(config.servers)


def _check_server(ctx: click.Context, server: str) -> None:
    known = _known_servers(ctx)
    if server not in known:
        raise click.ClickException(
            f"unknown server {server!r} (configured: {', '.join(known) or 'none'})")


def _change(name: str, change: Callable[[Persona], Any]) -> Persona:
    try:
        return _store().update(name, change)
    except PersonaError as exc:
        raise _fail(exc) from exc


def _describe(persona: Persona) -> list[str]:
    lines = [f"persona {persona.name}"]
    if persona.description:
        lines.append(f"  description: {persona.description}")
    lines.append(f"  created:     {persona.created.isoformat()}")
    lines.append(f"  modified:    {persona.modified.isoformat()}")
    lines.append(f"  read-only:   {'yes' if persona.read_only else 'no'}")
    if persona.confirm_destructive:
        lines.append("  confirm:     destructive tools on every server")
    if persona.tool_exposure is not None:
        lines.append(f"  tools shown: {persona.tool_exposure}")
    if not persona.servers:
        lines.append("  servers:     none (this persona sees nothing)")
        return lines
    lines.append("  servers:")
    for server, rules in persona.servers.items():
        flags = " (read-only)" if rules.read_only else ""
        lines.append(f"    {server}{flags}")
        for label, allow, deny in (("tools", rules.allow_tools, rules.deny_tools),
                                   ("prompts", rules.allow_prompts, rules.deny_prompts)):
            allowed = ", ".join(allow) if allow else "all"
            denied = f"; deny {', '.join(deny)}" if deny else ""
            lines.append(f"      {label}: allow {allowed}{denied}")
        if rules.confirm_tools:
            lines.append(f"      confirm tools: {', '.join(rules.confirm_tools)}")
        if rules.confirm_destructive:
            lines.append("      confirm destructive tools")
    return lines


# -- vmcp persona NAME COMMAND ----------------------------------------------------------------


@click.group(invoke_without_command=True)
@click.pass_context
def scoped_group(ctx: click.Context) -> None:
    """Change one persona (without a command: show it)."""
    if ctx.invoked_subcommand is None:
        try:
            persona = _store().load(_persona_name())
        except PersonaError as exc:
            raise _fail(exc) from exc
        click.echo("\n".join(_describe(persona)))


@scoped_group.command("enable")
@click.argument("servers", nargs=-1, required=True, shell_complete=complete_mount_ids)
@click.pass_context
def enable_command(ctx: click.Context, servers: tuple[str, ...]) -> None:
    """Let the persona use SERVERS (all their tools, prompts and resources)."""
    for server in servers:
        _check_server(ctx, server)
    name = _persona_name()
    changed: list[str] = []
    _change(name, lambda p: changed.extend(s for s in servers if p.enable(s)))
    for server in servers:
        state = "enabled" if server in changed else "already enabled"
        click.echo(f"{name}: {server} {state}")


@scoped_group.command("disable")
@click.argument("servers", nargs=-1, required=True, shell_complete=complete_mount_ids)
@click.pass_context
def disable_command(ctx: click.Context, servers: tuple[str, ...]) -> None:
    """Take SERVERS away from the persona (and forget their rules)."""
    name = _persona_name()
    try:
        persona = _store().load(name)
    except PersonaError as exc:
        raise _fail(exc) from exc
    for server in servers:
        if server not in persona.servers:
            _check_server(ctx, server)
    changed: list[str] = []
    _change(name, lambda p: changed.extend(s for s in servers if p.disable(s)))
    for server in servers:
        state = "disabled" if server in changed else "already disabled"
        click.echo(f"{name}: {server} {state}")


def _rule_command(command_name: str, kind: RuleKind, what: str) -> None:
    @click.argument("server", shell_complete=complete_mount_ids)
    @click.argument("pattern")
    @click.option("--remove", is_flag=True, help="Remove the pattern instead of adding it.")
    def command(server: str, pattern: str, remove: bool) -> None:
        name = _persona_name()

        def apply(persona: Persona) -> bool:
            if server not in persona.servers:
                raise PersonaError(f"server {server!r} is not enabled for persona {name!r} "
                                   f"(vmcp persona {name} enable {server})")
            if remove:
                return persona.remove_rule(server, kind, pattern)
            return persona.add_rule(server, kind, pattern)

        done: list[bool] = []
        _change(name, lambda p: done.append(apply(p)))
        verb = ("removed from" if remove else "added to") if done[0] else (
            "was not in" if remove else "already in")
        click.echo(f"{name}: {pattern!r} {verb} {server} {kind.replace('_', ' ')}")

    command.__doc__ = what
    scoped_group.command(command_name)(command)


_PATTERNS = ("PATTERN is an fnmatch pattern (get_*, read_?, [ab]*) on the server's own "
             "(unprefixed) names.")
_rule_command("allow-tool", "allow_tools",
              "Show only the tools matching PATTERN on SERVER.\n\nOnce a server has an "
              "allow pattern, its other tools are hidden. " + _PATTERNS)
_rule_command("deny-tool", "deny_tools",
              "Hide the tools matching PATTERN on SERVER.\n\nA deny pattern wins over allow "
              "patterns. " + _PATTERNS)
_rule_command("confirm-tool", "confirm_tools",
              "Ask the caller before every call of a tool matching PATTERN on SERVER.\n\n"
              "The gateway shows the caller (a form elicitation) the tool and its exact "
              "arguments; only an approved call runs. A client without elicitation is "
              "refused. " + _PATTERNS)
_rule_command("allow-prompt", "allow_prompts",
              "Show only the prompts matching PATTERN on SERVER.\n\n" + _PATTERNS)
_rule_command("deny-prompt", "deny_prompts",
              "Hide the prompts matching PATTERN on SERVER.\n\n" + _PATTERNS)


@scoped_group.command("read-only")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--server", help="Only this enabled server (default: the whole persona).")
@click.pass_context
def read_only_command(ctx: click.Context, state: str, server: str | None) -> None:
    """Limit the persona to read-only tools.

    Read-only tools are those a mount lists in its read_only_tools setting and, on a mount
    with trusted = true, those its server annotates with readOnlyHint.
    """
    name = _persona_name()
    value = state == "on"

    def apply(persona: Persona) -> None:
        if server is None:
            persona.read_only = value
        elif server not in persona.servers:
            raise PersonaError(f"server {server!r} is not enabled for persona {name!r}")
        else:
            persona.servers[server].read_only = value

    persona = _change(name, apply)
    click.echo(f"{name}: read-only {state}" + (f" for {server}" if server else ""))
    if value:
        _warn_hidden(ctx, [server] if server else list(persona.servers))


def _warn_hidden(ctx: click.Context, servers: list[str]) -> None:
    """Say which mounts read-only leaves without a single tool: neither trusted (so their
    readOnlyHint annotations count) nor listing read_only_tools."""
    config, _ = config_from_context(ctx)
    for server in servers:
        mount = config.servers.get(server)
        if mount is not None and not mount.trusted and not mount.read_only_tools:
            click.echo(f"warning: {server} hides every tool in read-only mode: it is not "
                       "trusted and lists no read_only_tools; set trusted = true on the mount "
                       "to use its server's readOnlyHint annotations, or list its read-only "
                       "tools in read_only_tools (vmcp tools --persona "
                       f"{_persona_name()} shows what the persona sees)", err=True)


@scoped_group.command("confirm-destructive")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--server", help="Only this enabled server (default: the whole persona).")
def confirm_destructive_command(state: str, server: str | None) -> None:
    """Ask the caller before every call of a tool that may be destructive.

    On a mount with trusted = true, that is every tool its server does not annotate with
    readOnlyHint = true or destructiveHint = false (overrides' annotations count). An
    untrusted mount's annotations are not believed: there, every tool except those the
    mount lists in read_only_tools is asked about. Asking works as for confirm-tool.
    """
    name = _persona_name()
    value = state == "on"

    def apply(persona: Persona) -> None:
        if server is None:
            persona.confirm_destructive = value
        elif server not in persona.servers:
            raise PersonaError(f"server {server!r} is not enabled for persona {name!r}")
        else:
            persona.servers[server].confirm_destructive = value

    _change(name, apply)
    click.echo(f"{name}: confirm destructive tools {state}" + (f" for {server}" if server else ""))


@scoped_group.command("tool-exposure")
@click.argument("mode", type=click.Choice(["all", "search", "auto", "default"]))
def tool_exposure_command(mode: str) -> None:
    """What tools/list shows the persona: every tool (all), the search meta-tools (search),
    the meta-tools above [gateway] search_threshold tools or search_token_threshold
    estimated tokens (auto), or the gateway's tool_exposure (default)."""
    name = _persona_name()
    _change(name, lambda p: setattr(p, "tool_exposure", None if mode == "default" else mode))
    click.echo(f"{name}: tool exposure {mode}")


@scoped_group.command("describe")
@click.argument("description")
def describe_command(description: str) -> None:
    """Set the persona's description."""
    name = _persona_name()
    _change(name, lambda p: setattr(p, "description", description))
    click.echo(f"{name}: description set")


# -- vmcp persona COMMAND -------------------------------------------------------------------


@click.group("persona", cls=PersonaGroup, scoped=scoped_group)
def persona_group() -> None:
    """Personas: named sets of what a caller may use.

    A new persona sees nothing; enable servers, then narrow with tool and prompt patterns:

    \b
      vmcp persona create coder --description "coding agent"
      vmcp persona coder enable git files
      vmcp persona coder deny-tool files 'delete*'
      vmcp persona coder read-only on --server git
      vmcp start --persona coder

    A running gateway applies changes at once and tells connected clients.
    """


@persona_group.command("create")
@click.argument("name")
@click.option("--description", "-d", default="", help="What the persona is for.")
def create_command(name: str, description: str) -> None:
    """Create persona NAME, with no access at all."""
    if name in persona_group.commands:
        raise click.ClickException(f"{name!r} is a command name; choose another persona name")
    try:
        _store().create(name, description)
    except PersonaError as exc:
        raise _fail(exc) from exc
    click.echo(f"created persona {name} (no access yet: vmcp persona {name} enable SERVER)")


@persona_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(as_json: bool) -> None:
    """List personas; unreadable persona files are reported (exit status 1)."""
    personas, problems = _store().load_all()
    if as_json:
        click.echo(json.dumps([p.model_dump(mode="json") for p in personas.values()], indent=2))
    elif personas:
        table(["NAME", "SERVERS", "DESCRIPTION"],
              [[name, ", ".join(persona.servers) or None, persona.description or None]
               for name, persona in personas.items()])
    elif not problems:
        click.echo("no personas (vmcp persona create NAME)")
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if problems:
        raise SystemExit(1)


@persona_group.command("show")
@click.argument("name", shell_complete=complete_persona_names)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_command(name: str, as_json: bool) -> None:
    """Show persona NAME: its servers and rules."""
    try:
        persona = _store().load(name)
    except PersonaError as exc:
        raise _fail(exc) from exc
    if as_json:
        click.echo(json.dumps(persona.model_dump(mode="json"), indent=2))
    else:
        click.echo("\n".join(_describe(persona)))


@persona_group.command("delete")
@click.argument("name", shell_complete=complete_persona_names)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def delete_command(name: str, yes: bool) -> None:
    """Delete persona NAME (connections using it then see nothing)."""
    store = _store()
    try:
        if not store.exists(name):
            raise PersonaError(f"unknown persona {name!r}")
        if not yes:
            click.confirm(f"Delete persona {name!r}?", abort=True)
        store.delete(name)
    except PersonaError as exc:
        raise _fail(exc) from exc
    click.echo(f"deleted persona {name}")
