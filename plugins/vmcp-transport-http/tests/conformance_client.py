"""The client the conformance suite's ``client`` scenarios drive: vmcp's back side.

The suite starts a scenario server and runs ``python conformance_client.py <url>`` with
``MCP_CONFORMANCE_SCENARIO`` (the scenario), ``MCP_CONFORMANCE_PROTOCOL_VERSION`` (the era it
runs at) and, for some scenarios, ``MCP_CONFORMANCE_CONTEXT`` (JSON) in the environment.
This command starts ``vmcp start`` over stdio with ``<url>`` mounted as an HTTP backend
without a prefix and ``era = "auto"`` (vmcp probes ``server/discover`` and falls back to
``initialize``, so it speaks the scenario's era), connects the SDK's ``Client`` to it in
the scenario's era, and makes the calls the scenario asks for; the suite judges what vmcp
sent to its server. With ``--direct``
the same ``Client`` talks to ``<url>`` itself (the baseline: what the SDK alone gets).

It exits 0 when every call it had to make worked, 1 otherwise (the suite records both).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
from mcp import StdioServerParameters
from mcp.client.client import Client
from mcp.client.context import ClientRequestContext
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

Scenario = Callable[[Client], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(*names: str) -> Callable[[Scenario], Scenario]:
    """Register what the client does in the scenarios ``names``."""
    def register(run: Scenario) -> Scenario:
        SCENARIOS.update(dict.fromkeys(names, run))
        return run
    return register


async def sample(ctx: ClientRequestContext, params: types.CreateMessageRequestParams
                 ) -> types.CreateMessageResult:
    """Answer a sampling request with an empty text."""
    return types.CreateMessageResult(role="assistant", content=types.TextContent(
        type="text", text=""), model="conformance-client")


async def roots(ctx: ClientRequestContext) -> types.ListRootsResult:
    """No roots."""
    return types.ListRootsResult(roots=[])


async def accept_defaults(ctx: ClientRequestContext, params: types.ElicitRequestParams
                          ) -> types.ElicitResult:
    """Accept a form with the defaults its schema gives (SEP-1034), and ``confirmed: true``."""
    content: dict[str, Any] = {}
    if isinstance(params, types.ElicitRequestFormParams):
        for name, schema in params.requested_schema.get("properties", {}).items():
            if "default" in schema:
                content[name] = schema["default"]
    return types.ElicitResult(action="accept", content=content or {"confirmed": True})


def _stub_arguments(input_schema: dict[str, Any]) -> dict[str, Any]:
    """The least arguments satisfying a schema's ``required`` list."""
    by_type = {"string": "x", "integer": 0, "number": 0, "boolean": False, "object": {},
               "array": [], "null": None}
    properties = input_schema.get("properties", {})
    return {name: by_type.get(properties.get(name, {}).get("type"), "x")
            for name in input_schema.get("required", [])}


@scenario("initialize", "json-schema-ref-no-deref")
async def list_tools(client: Client) -> None:
    """Connect and list the tools."""
    await client.list_tools()


@scenario("tools_call", "request-metadata", "http-standard-headers")
async def add_numbers(client: Client) -> None:
    """List the tools and call ``add_numbers(5, 3)``."""
    await client.list_tools()
    await _succeeds(client, "add_numbers", {"a": 5, "b": 3})


@scenario("sse-retry")
async def reconnection(client: Client) -> None:
    """Call ``test_reconnection`` (its stream is closed before it answers)."""
    await client.list_tools()
    await _succeeds(client, "test_reconnection", {})


@scenario("elicitation-sep1034-client-defaults")
async def elicitation_defaults(client: Client) -> None:
    """Call the tool that elicits a form of defaults."""
    await client.list_tools()
    await _succeeds(client, "test_client_elicitation_defaults", {})


@scenario("json-schema-2020-12-preservation")
async def schema_echo(client: Client) -> None:
    """Send the 2020-12 tool's input schema back exactly as listed."""
    listed = await client.list_tools()
    focal = next(tool for tool in listed.tools if tool.name == "json_schema_2020_12_tool")
    await _succeeds(client, "json_schema_echo", {"schema": focal.input_schema})


@scenario("sep-2322-client-request-state")
async def request_state(client: Client) -> None:
    """The multi-round-trip tools of SEP-2322 (the ``Client`` retries with the answers)."""
    await client.list_tools()
    for name in ("test_mrtr_echo_state", "test_mrtr_unrelated", "test_mrtr_no_state",
                 "test_mrtr_no_result_type"):
        await _succeeds(client, name, {})


@scenario("http-invalid-tool-headers")
async def every_listed_tool(client: Client) -> None:
    """Call every tool listed (the ones with malformed ``x-mcp-header`` must not be)."""
    for tool in (await client.list_tools()).tools:
        await _tolerated(client.call_tool(tool.name, _stub_arguments(tool.input_schema)))


@scenario("http-custom-headers")
async def custom_headers(client: Client) -> None:
    """Replay the scenario's ``toolCalls`` (their arguments become ``Mcp-Param-*`` headers)."""
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    listed = {tool.name for tool in (await client.list_tools()).tools}
    for call in context.get("toolCalls", []):
        if call["name"] in listed:
            await _tolerated(client.call_tool(call["name"], call.get("arguments") or {}))


async def _tolerated(call: Awaitable[Any]) -> None:
    """Make a call whose failure the scenario allows (it judges the request, not the answer)."""
    try:
        await call
    except MCPError as exc:
        print(f"conformance_client: allowed failure: {exc}", file=sys.stderr)


async def _succeeds(client: Client, name: str, arguments: dict[str, Any]) -> None:
    result = await client.call_tool(name, arguments)
    if result.is_error:
        raise RuntimeError(f"{name} failed: {result.content}")


def _mode(protocol_version: str | None) -> str:
    """``legacy`` for a handshake-era scenario, ``auto`` for a modern one.

    ``auto`` probes with ``server/discover`` (the scenario server checks that the retry with a
    supported version works) and falls back to the handshake when the server is legacy; so
    through vmcp the scenario judges vmcp's back side whatever era its front speaks.
    """
    if protocol_version in MODERN_PROTOCOL_VERSIONS:
        return "auto"
    return "legacy"


def _vmcp(url: str, home: Path) -> StdioServerParameters:
    """``vmcp start`` over stdio, with ``url`` mounted without a prefix, its era probed."""
    config = home / "vmcp.toml"
    config.write_text(
        f'[servers.scenario]\ntransport = "http"\nurl = {json.dumps(url)}\nprefix = ""\n'
        'era = "auto"\n',
        encoding="utf-8")
    return StdioServerParameters(
        command=sys.executable, args=["-m", "vmcp", "--config", str(config), "start"],
        env={**os.environ, "VMCP_HOME": str(home / "home")})


async def run(url: str, direct: bool) -> None:
    """Make the calls of the scenario named in the environment."""
    name = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    calls = SCENARIOS.get(name)
    if calls is None:
        raise SystemExit(f"conformance_client: no calls for scenario {name!r}")
    mode = _mode(os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION"))
    with tempfile.TemporaryDirectory(prefix="vmcp-conformance-") as home:
        server: str | StdioServerParameters = url if direct else _vmcp(url, Path(home))
        async with Client(server, mode=mode, sampling_callback=sample,  # type: ignore[arg-type]
                          list_roots_callback=roots,
                          elicitation_callback=accept_defaults) as client:
            await calls(client)


def main() -> None:
    """``conformance_client.py [--direct] URL``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--direct", action="store_true", help="no vmcp: the SDK client alone")
    parser.add_argument("url")
    args = parser.parse_args()
    anyio.run(run, args.url, args.direct)


if __name__ == "__main__":
    main()
