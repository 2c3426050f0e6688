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

In an authorization scenario (``auth/...``) the mount gets an ``[servers.scenario.oauth]``
table (the pre-registered client of ``MCP_CONFORMANCE_CONTEXT``, else the suite's client ID
metadata document URL, which vmcp falls back from to dynamic registration when the server
does not take it), and this command acts as the person: it runs ``vmcp auth login``, follows
the URL it prints with an HTTP client (the scenario's authorization server redirects at once
to vmcp's loopback receiver), and whenever a call fails with an error naming a ``vmcp auth
login`` command (a step-up), or ``vmcp list`` shows the mount failed with one (a grant the
server stopped taking when vmcp connected), runs that command and makes the calls again.
When vmcp names no command, the call's failure stands: how often to ask a person to sign in
again is vmcp's decision, which the scenarios judge.

It exits 0 when every call it had to make worked, 1 otherwise (the suite records both).
"""

from __future__ import annotations

import sys
from pathlib import Path

# First: a warm start when the test session offers one (tests/fixtures/servers/prefork.py).
sys.path.append(str(Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "servers"))
import prefork  # noqa: F401

# isort: split

import argparse
import json
import os
import re
import shlex
import subprocess
import tempfile
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import anyio
import mcp.types as types
from anyio.streams.text import TextReceiveStream
from mcp import StdioServerParameters
from mcp.client.client import Client
from mcp.client.context import ClientRequestContext
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

#: the client id the suite's authorization servers accept as a client ID metadata document
CIMD_URL = "https://conformance-test.local/client-metadata.json"
#: the sign-in command an error of vmcp names
SIGN_IN = re.compile(r"`(vmcp auth login [^`]+)`")
#: seconds one sign-in may take
SIGN_IN_TIMEOUT = 20.0
#: sign-ins after which this person stops following vmcp's advice (vmcp's own limit, which
#: the scenarios judge, is meant to come first)
PATIENCE = 6

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


class SignInNeeded(Exception):
    """A call failed with an error naming the command that signs in."""

    def __init__(self, command: str) -> None:
        super().__init__(command)
        self.command = command


def _sign_in_named(text: str) -> None:
    """Raise :class:`SignInNeeded` when ``text`` names a sign-in command."""
    found = SIGN_IN.search(text)
    if found:
        raise SignInNeeded(found.group(1))


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
        text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
        _sign_in_named(text)
        raise RuntimeError(f"{name} failed: {result.content}")


@scenario(*(f"auth/{name}" for name in (
    "metadata-default", "metadata-var1", "metadata-var2", "metadata-var3", "basic-cimd",
    "scope-from-www-authenticate", "scope-from-scopes-supported",
    "scope-omitted-when-undefined", "scope-step-up", "scope-retry-limit",
    "token-endpoint-auth-basic", "token-endpoint-auth-post", "token-endpoint-auth-none",
    "pre-registration", "resource-mismatch", "offline-access-scope",
    "offline-access-not-supported", "authorization-server-migration", "iss-supported",
    "iss-not-advertised", "iss-supported-missing", "iss-wrong-issuer", "iss-unexpected",
    "iss-normalized", "metadata-issuer-mismatch")))
async def protected_tool(client: Client) -> None:
    """List the tools and call ``test-tool`` twice (a server may change its mind between)."""
    try:
        await client.list_tools()
    except MCPError as exc:
        _sign_in_named(str(exc))
        raise
    for _ in range(2):
        try:
            await _succeeds(client, "test-tool", {})
        except MCPError as exc:
            _sign_in_named(str(exc))
            raise


async def follow(url: str) -> None:
    """Act as the person: open the authorization URL and follow where it sends the browser
    (the suite's authorization server consents at once)."""
    async with aiohttp.ClientSession() as http:
        async with http.get(url, allow_redirects=False) as answer:
            callback = answer.headers.get("Location")
            if answer.status not in (302, 303) or callback is None:
                raise RuntimeError(f"the authorization URL answered {answer.status}")
        async with http.get(callback) as done:
            print(f"conformance_client: loopback answered {done.status}", file=sys.stderr)


async def sign_in(config: Path, env: dict[str, str], command: str) -> None:
    """Run the sign-in ``command`` (``vmcp auth login ...``) and follow the URL it prints."""
    args = shlex.split(command)[1:]
    process = await anyio.open_process(
        [sys.executable, "-m", "vmcp", "--config", str(config), *args, "--no-browser",
         "--timeout", str(SIGN_IN_TIMEOUT)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=None, env=env)
    async with process:
        assert process.stdout is not None
        with anyio.fail_after(SIGN_IN_TIMEOUT):
            async for line in TextReceiveStream(process.stdout):
                if line.startswith("http"):
                    await follow(line.strip())
                    break
            code = await process.wait()
    if code != 0:
        raise RuntimeError(f"{command} failed (exit status {code})")


def _mode(protocol_version: str | None) -> str:
    """``legacy`` for a handshake-era scenario, ``auto`` for a modern one.

    ``auto`` probes with ``server/discover`` (the scenario server checks that the retry with a
    supported version works) and falls back to the handshake when the server is legacy; so
    through vmcp the scenario judges vmcp's back side whatever era its front speaks.
    """
    if protocol_version in MODERN_PROTOCOL_VERSIONS:
        return "auto"
    return "legacy"


def _oauth_table(context: dict[str, Any]) -> str:
    """The mount's ``oauth`` table in an authorization scenario (one shared grant: over stdio
    every call is the same caller's)."""
    lines = ["[servers.scenario.oauth]", 'grants = "shared"']
    if "client_id" in context:
        lines.append(f"client_id = {json.dumps(context['client_id'])}")
        if "client_secret" in context:
            lines.append(f"client_secret = {json.dumps(context['client_secret'])}")
    else:
        lines.append(f"client_metadata_url = {json.dumps(CIMD_URL)}")
    return "\n".join(lines) + "\n"


def _vmcp(url: str, home: Path, oauth: bool) -> tuple[Path, StdioServerParameters]:
    """``vmcp start`` over stdio, with ``url`` mounted without a prefix, its era probed (and,
    in an authorization scenario, signed in to with OAuth); returns its config file too."""
    config = home / "vmcp.toml"
    text = (f'[servers.scenario]\ntransport = "http"\nurl = {json.dumps(url)}\nprefix = ""\n'
            'era = "auto"\n')
    if oauth:
        text += _oauth_table(json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}"))
    config.write_text(text, encoding="utf-8")
    return config, StdioServerParameters(
        command=sys.executable, args=["-m", "vmcp", "--config", str(config), "start"],
        env={**os.environ, "VMCP_HOME": str(home / "home")})


async def run(url: str, direct: bool) -> None:
    """Make the calls of the scenario named in the environment."""
    name = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    calls = SCENARIOS.get(name)
    if calls is None:
        raise SystemExit(f"conformance_client: no calls for scenario {name!r}")
    mode = _mode(os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION"))
    oauth = name.startswith("auth/")
    if oauth and direct:
        raise SystemExit("conformance_client: --direct has no OAuth client")
    with tempfile.TemporaryDirectory(prefix="vmcp-conformance-") as home:
        if direct:
            await _connected(url, mode, calls)
            return
        config, server = _vmcp(url, Path(home), oauth)
        if not oauth:
            await _connected(server, mode, calls)
            return
        command = "vmcp auth login scenario"
        env = server.env or {}

        async def attempt(client: Client) -> None:
            try:
                await calls(client)
            except (MCPError, RuntimeError):
                await _advice(config, env)
                raise

        for _ in range(PATIENCE):
            await sign_in(config, env, command)
            try:
                await _connected(server, mode, attempt)
                return
            except* SignInNeeded as group:
                needed = _leaf(group)
                print(f"conformance_client: vmcp asks for {needed.command}", file=sys.stderr)
                command = needed.command
        raise SystemExit("conformance_client: vmcp keeps asking for a sign-in")


async def _advice(config: Path, env: dict[str, str]) -> None:
    """Act as the person after a failed call: look at ``vmcp list`` (the running gateway's
    mount table) and raise :class:`SignInNeeded` when a mount's problem names a command."""
    listed = await anyio.run_process(
        [sys.executable, "-m", "vmcp", "--config", str(config), "list", "--json"],
        env=env, check=False)
    if listed.returncode == 0:
        for row in json.loads(listed.stdout):
            _sign_in_named(row.get("error") or "")


def _leaf(group: BaseExceptionGroup[SignInNeeded]) -> SignInNeeded:
    """The first sign-in request in ``group`` (task groups nest them)."""
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    assert isinstance(found, SignInNeeded)
    return found


async def _connected(server: str | StdioServerParameters, mode: str, calls: Scenario) -> None:
    """Connect a ``Client`` to ``server`` in ``mode`` and make ``calls``."""
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
