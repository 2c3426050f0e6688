"""``vmcp tools`` and ``vmcp call``: try the gateway from a shell.

They go through the running gateway's control socket when one runs with this home, and
otherwise start the gateway from the configuration in this process for the one command.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from vmcp.cli.common import config_from_context
from vmcp.cli.completion import complete_persona_names, complete_tool_names
from vmcp.cli.ops_cmd import control_call, live_gateway
from vmcp.cli.output import echo_json, fail, parse_assignments, table
from vmcp.control.local import LocalSession, config_for_tool, with_local_gateway
from vmcp.logs import config_secrets, configure_logging
from vmcp.protocol.errors import RpcError
from vmcp.registry.mount import Mount

T = TypeVar("T")


def _run(ctx: click.Context, op: str, args: dict[str, Any],
         work: Callable[[LocalSession], Awaitable[T]], tool: str | None = None,
         persona: str | None = None) -> Any:
    """``op`` on the running gateway, else ``work`` on one started for this command (with
    only ``tool``'s mount when a tool is named; as ``persona`` when one is given, which is
    always previewed on a gateway of this command's own)."""
    client = live_gateway() if persona is None else None
    if client is not None:
        return control_call(client, op, **args)
    config, _ = config_from_context(ctx)
    if tool is not None:
        config = config_for_tool(config, tool)
    principal = None
    if persona is not None:
        from vmcp.auth.base import Principal
        from vmcp.persona import PersonaError, PersonaStore

        try:
            PersonaStore.default().load(persona)
        except PersonaError as exc:
            fail(str(exc))
        principal = Principal("cli", persona)
    configure_logging(config.logging, "error", config_secrets(config))
    try:
        return asyncio.run(with_local_gateway(config, work, principal))
    except RpcError as exc:
        fail(f"error {exc.code}: {exc.message}")
    except TimeoutError:
        fail("the gateway did not answer in time")


def _why_down(mount: Mount | None) -> str:
    return (mount.error if mount is not None else None) or "not mounted"


async def _list_tools(session: LocalSession) -> list[dict[str, Any]]:
    """The tools of a gateway started for this command; exit 1 when no mount started."""
    gateway = session.gateway
    enabled = [m for m in gateway.config.servers.values() if m.enabled]
    up = [m for m in gateway.mounts.values() if m.state == "up"]
    if enabled and not up:
        reasons = "; ".join(f"{m.id}: {_why_down(gateway.mounts.get(m.id))}" for m in enabled)
        fail(f"no mount started ({reasons})")
    return await session.list_tools()


async def _lint(session: LocalSession) -> dict[str, Any]:
    from vmcp.gateway.lint import lint_report

    return lint_report(session.gateway)


def _print_lint(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(report)
    else:
        rows = [[e["kind"], e["name"], str(e["length"]),
                 "; ".join(e["problems"] + ([f"alias of {e['alias_of']} ({e['full_length']})"]
                                            if "alias_of" in e else []))]
                for e in report["names"]]
        table(["KIND", "NAME", "LENGTH", "NOTES"], rows)
        for collision in report["collisions"]:
            click.echo(f"collision: mount {collision['mount']}: {collision['problem']}", err=True)
        for failed in report["failed_mounts"]:
            click.echo(f"failed: mount {failed['mount']}: {failed['error']}", err=True)
    if not report["ok"]:
        raise SystemExit(1)


@click.command("tools")
@click.option("--json", "as_json", is_flag=True, help="Print the tools as a JSON array.")
@click.option("--lint", is_flag=True,
              help="Check every exposed tool and prompt name: lengths against "
                   "[gateway] max_tool_name, aliases, collisions, and the MCP and model API "
                   "name rules. Exit 1 when a name breaks a rule or collides.")
@click.option("--persona", shell_complete=complete_persona_names,
              help="What this persona sees (the configured mounts are started for it).")
@click.pass_context
def tools_command(ctx: click.Context, as_json: bool, lint: bool, persona: str | None) -> None:
    """List the tools the gateway exposes (the running one, or one started from the
    configuration for this command)."""
    if lint:
        _print_lint(_run(ctx, "lint", {}, _lint, persona=persona), as_json)
        return
    tools = _run(ctx, "tools", {}, _list_tools, persona=persona)
    if persona is not None and not tools:
        click.echo(f"persona {persona!r} sees no tools (vmcp persona show {persona})",
                   err=True)
    if as_json:
        echo_json(tools)
        return
    rows = [[t["name"], ((t.get("description") or "").strip().splitlines() or [""])[0]]
            for t in tools]
    table(["TOOL", "DESCRIPTION"], rows)


def _print_result(result: dict[str, Any]) -> None:
    printed = False
    for block in result.get("content") or []:
        if block.get("type") == "text":
            click.echo(block.get("text", ""))
        else:
            click.echo(json.dumps(block, ensure_ascii=False))
        printed = True
    if not printed and "structuredContent" in result:
        echo_json(result["structuredContent"])


@click.command("call")
@click.argument("tool", shell_complete=complete_tool_names)
@click.argument("args", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@click.pass_context
def call_command(ctx: click.Context, tool: str, args: tuple[str, ...], as_json: bool) -> None:
    """Call TOOL with key=value arguments (a value that parses as JSON is JSON: n=3,
    flag=true, tags='["a","b"]'; anything else is a string). Exit 1 when the tool fails."""
    arguments = parse_assignments(args)
    result = _run(ctx, "call", {"name": tool, "arguments": arguments},
                  lambda session: session.call_tool(tool, arguments), tool=tool)
    if as_json:
        echo_json(result)
    else:
        _print_result(result)
    if result.get("isError") is True:
        raise SystemExit(1)
