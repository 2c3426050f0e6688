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
from vmcp.cli.ops_cmd import control_call, live_gateway
from vmcp.cli.output import echo_json, fail, parse_assignments, table
from vmcp.control.local import LocalSession, with_local_gateway
from vmcp.logs import config_secrets, configure_logging
from vmcp.protocol.errors import RpcError
from vmcp.registry.mount import Mount

T = TypeVar("T")


def _run(ctx: click.Context, op: str, args: dict[str, Any],
         work: Callable[[LocalSession], Awaitable[T]]) -> Any:
    client = live_gateway()
    if client is not None:
        return control_call(client, op, **args)
    config, _ = config_from_context(ctx)
    configure_logging(config.logging, "error", config_secrets(config))
    try:
        return asyncio.run(with_local_gateway(config, work))
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


@click.command("tools")
@click.option("--json", "as_json", is_flag=True, help="Print the tools as a JSON array.")
@click.pass_context
def tools_command(ctx: click.Context, as_json: bool) -> None:
    """List the tools the gateway exposes (the running one, or one started from the
    configuration for this command)."""
    tools = _run(ctx, "tools", {}, _list_tools)
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
@click.argument("tool")
@click.argument("args", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@click.pass_context
def call_command(ctx: click.Context, tool: str, args: tuple[str, ...], as_json: bool) -> None:
    """Call TOOL with key=value arguments (a value that parses as JSON is JSON: n=3,
    flag=true, tags='["a","b"]'; anything else is a string). Exit 1 when the tool fails."""
    arguments = parse_assignments(args)
    result = _run(ctx, "call", {"name": tool, "arguments": arguments},
                  lambda session: session.call_tool(tool, arguments))
    if as_json:
        echo_json(result)
    else:
        _print_result(result)
    if result.get("isError") is True:
        raise SystemExit(1)
