"""Token auth and personas over real HTTP: ``vmcp start -t http`` with ``[auth] driver = "token"``.

Two clients with tokens for different personas use one gateway at the same time; requests
without a token, or with a wrong, expired or revoked one, get 401 with a ``WWW-Authenticate``
challenge, and the gateway binds to loopback only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path

import anyio
import httpx2
import pytest
from anyio.streams.text import TextReceiveStream
from gateway_harness import ALPHA, BETA, CONNECT_TIMEOUT, EVENT_TIMEOUT, all_tools, backend
from gateway_harness import write_config as write_servers
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from vmcp.auth.tokens import TokenStore
from vmcp.persona import PersonaStore

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "probe", "version": "1"}}}


@asynccontextmanager
async def http_gateway(config: Path, home: Path) -> AsyncIterator[str]:
    """Run ``vmcp start -t http``; yield its MCP URL; end the process."""
    process = await anyio.open_process(
        [sys.executable, "-m", "vmcp", "--config", str(config), "start", "-t", "http"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "VMCP_HOME": str(home)})
    lines: list[str] = []
    url: list[str] = []
    ready = anyio.Event()

    async def drain() -> None:
        assert process.stderr is not None
        buffer = ""
        async for chunk in TextReceiveStream(process.stderr):
            *done, buffer = (buffer + chunk).split("\n")
            for line in done:
                lines.append(line)
                if line.startswith("vmcp: serving http on "):
                    url.append(line.removeprefix("vmcp: serving http on "))
                    ready.set()
        ready.set()

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(drain)
            with anyio.fail_after(CONNECT_TIMEOUT):
                await ready.wait()
            assert url, "gateway did not start:\n" + "\n".join(lines)
            try:
                yield url[0]
            finally:
                process.send_signal(signal.SIGTERM)
                with anyio.fail_after(EVENT_TIMEOUT):
                    await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        print("--- gateway stderr ---\n" + "\n".join(lines))


@asynccontextmanager
async def connect(url: str, token: str) -> AsyncIterator[ClientSession]:
    """An initialized SDK session over Streamable HTTP, presenting ``token``."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=60)))
        read, write = await stack.enter_async_context(streamable_http_client(url, http_client=http))
        session = await stack.enter_async_context(ClientSession(read, write))
        with anyio.fail_after(CONNECT_TIMEOUT):
            await session.initialize()
        yield session


async def post_initialize(url: str, token: str | None) -> httpx2.Response:
    """A raw ``initialize`` POST, with or without a bearer token."""
    headers = {"Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx2.AsyncClient(timeout=EVENT_TIMEOUT) as http:
        return await http.post(url, content=json.dumps(INITIALIZE), headers=headers)


async def test_token_auth_and_two_personas_over_http(tmp_path: Path) -> None:
    home = tmp_path / "home"
    personas = PersonaStore(home / "config" / "personas")
    for name, server in (("coder", "alpha"), ("support", "beta")):
        persona = personas.create(name)
        persona.enable(server)
        personas.save(persona)
    tokens = TokenStore(home / "config" / "tokens.json")
    _, coder = tokens.create("coder", timedelta(hours=1))
    _, support = tokens.create("support", None)
    doomed, revoked = tokens.create("coder", None)
    _, expired = tokens.create("coder", timedelta(seconds=-1))
    config = write_servers(tmp_path / "config" / "vmcp.toml",
                           {"alpha": backend(ALPHA), "beta": backend(BETA)})
    with config.open("a", encoding="utf-8") as fh:
        fh.write('\n[auth]\ndriver = "token"\n\n[transports.http]\nport = 0\n')

    async with http_gateway(config, home) as url:
        assert url.startswith("http://127.0.0.1:")
        for token in (None, coder + "x", expired):
            refused = await post_initialize(url, token)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
        # The challenge names the RFC 9728 metadata, served without a token.
        challenge = refused.headers["www-authenticate"]
        assert 'resource_metadata="' in challenge
        metadata_url = challenge.split('resource_metadata="')[1].split('"')[0]
        async with httpx2.AsyncClient(timeout=EVENT_TIMEOUT) as http:
            path_form = url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
            for where in (metadata_url, path_form):
                document = (await http.get(where)).json()
                assert document["resource"] == url
                assert document["bearer_methods_supported"] == ["header"]
        assert (await post_initialize(url, revoked)).status_code == 200
        tokens.revoke(doomed.id)
        assert (await post_initialize(url, revoked)).status_code == 401

        async with connect(url, coder) as a, connect(url, support) as b:
            tools_a = [t.name for t in await all_tools(a)]
            tools_b = [t.name for t in await all_tools(b)]
            assert tools_a and all(name.startswith("alpha__") for name in tools_a)
            assert tools_b == ["beta__echo", "beta__whoami", "beta__links", "beta__touch"]
            answer = await b.call_tool("beta__whoami", {})
            assert answer.content[0].text == "beta"  # type: ignore[union-attr]
            for session, hidden in ((a, "beta__whoami"), (b, "alpha__echo")):
                with anyio.fail_after(EVENT_TIMEOUT), pytest.raises(MCPError) as failed:
                    await session.call_tool(hidden, {"text": "x"})
                assert failed.value.error.message == f"Unknown tool: {hidden}"


async def test_persona_isolation_gives_each_persona_its_own_backend(tmp_path: Path) -> None:
    home = tmp_path / "home"
    personas = PersonaStore(home / "config" / "personas")
    tokens = TokenStore(home / "config" / "tokens.json")
    granted = {}
    for name in ("coder", "support"):
        persona = personas.create(name)
        persona.enable("alpha")
        personas.save(persona)
        granted[name] = tokens.create(name, None)[1]
    config = write_servers(tmp_path / "config" / "vmcp.toml",
                           {"alpha": backend(ALPHA, isolation="persona")})
    with config.open("a", encoding="utf-8") as fh:
        fh.write('\n[auth]\ndriver = "token"\n\n[transports.http]\nport = 0\n')

    async def connections() -> int:
        result = await anyio.run_process(
            [sys.executable, "-m", "vmcp", "--config", str(config), "info", "alpha", "--json"],
            env={**os.environ, "VMCP_HOME": str(home)})
        return int(json.loads(result.stdout)["health"]["isolated_connections"])

    async with (
        http_gateway(config, home) as url,
        connect(url, granted["coder"]) as first,
        connect(url, granted["coder"]) as second,
        connect(url, granted["support"]) as other,
    ):
        for session in (first, second, other):
            result = await session.call_tool("alpha__echo", {"text": "hi"})
            assert result.content[0].text == "alpha: hi"  # type: ignore[union-attr]
        assert await connections() == 2  # one process per persona, not per session
