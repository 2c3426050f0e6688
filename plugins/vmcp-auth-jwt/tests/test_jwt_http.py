"""The ``jwt`` driver behind the real Streamable HTTP front (``vmcp-transport-http``).

The gateway runs in the test's event loop with the demo servers as backends and its ``http``
front on a free port; the SDK client presents JWTs signed with a key generated in the test
and published by a JWKS served over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from jwks_server import JwksServer
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from vmcp.config import VmcpConfig
from vmcp.gateway.gateway import Gateway
from vmcp.persona import PersonaStore

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

AUDIENCE = "https://gw.test/mcp"
TIMEOUT = 30.0


def demo(module: str) -> dict[str, Any]:
    """A mount running one of vmcp's demo servers."""
    return {"command": sys.executable, "args": ["-m", module]}


@asynccontextmanager
async def serving(config: VmcpConfig) -> AsyncIterator[str]:
    """Start the gateway and its ``http`` front; yield the MCP URL; stop both."""
    gateway = Gateway(config)
    where: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    front: asyncio.Task[None] | None = None
    try:
        with anyio.fail_after(TIMEOUT):
            await gateway.start()
            front = asyncio.get_running_loop().create_task(gateway.transport("http").serve(
                gateway, config.transports["http"], where.set_result))
            url = await where
        yield url
    finally:
        if front is not None:
            front.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await front
        await gateway.stop()


def token(key: Any, **overrides: Any) -> str:
    """A JWT for the gateway, for persona ``coder``, with scope ``mcp``."""
    now = int(time.time())
    claims = {"sub": "alice", "aud": AUDIENCE, "exp": now + 600, "scope": "mcp",
              "vmcp_persona": "coder", **overrides}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, "RS256",
                      {"kid": "k1"})


async def status_of(url: str, bearer: str | None) -> httpx2.Response:
    """A raw ``initialize`` POST."""
    headers = {"Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    body = ('{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":'
            '"2025-06-18","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}')
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
        return await http.post(url, content=body, headers=headers)


async def test_jwt_over_http(
    jwks: JwksServer, rsa_key: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMCP_HOME", str(tmp_path))
    persona = PersonaStore.default().create("coder")
    persona.enable("toolbox")
    PersonaStore.default().save(persona)
    jwks.publish("k1", rsa_key)
    config = VmcpConfig.model_validate({
        "servers": {"toolbox": demo("vmcp.demo.toolbox"), "notes": demo("vmcp.demo.notes")},
        "auth": {"driver": "jwt", "jwks_url": jwks.url, "audience": AUDIENCE,
                 "required_scopes": ["mcp"]},
        "transports": {"http": {"port": 0}},
    })
    async with serving(config) as url:
        assert (await status_of(url, None)).status_code == 401
        assert (await status_of(url, token(rsa_key, aud="https://other/mcp"))).status_code == 401
        assert (await status_of(url, token(rsa_key, exp=int(time.time()) - 600))).status_code == 401
        assert (await status_of(url, token(rsa_key, scope="read"))).status_code == 403

        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(httpx2.AsyncClient(
                headers={"Authorization": f"Bearer {token(rsa_key)}"}, timeout=TIMEOUT))
            read, write = await stack.enter_async_context(
                streamable_http_client(url, http_client=http))
            session = await stack.enter_async_context(ClientSession(read, write))
            with anyio.fail_after(TIMEOUT):
                await session.initialize()
                tools = (await session.list_tools()).tools
                assert tools and all(t.name.startswith("toolbox__") for t in tools)
                assert (await session.list_resources()).resources == []  # notes: not enabled
                echoed = await session.call_tool("toolbox__echo", {"text": "hi"})
                assert "hi" in echoed.content[0].text  # type: ignore[union-attr]
