"""The auth driver guards the WebSocket handshake (the built-in ``token`` driver, for real)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from ws_harness import EVENT_TIMEOUT, MCP, fixture_mount, run_gateway, write_config, ws_session

from vmcp.auth.tokens import TokenStore
from vmcp.persona.store import PersonaStore

pytestmark = pytest.mark.anyio


async def test_token_auth_guards_the_handshake(tmp_path: Path) -> None:
    home = tmp_path / "home"  # run_gateway's VMCP_HOME
    personas = PersonaStore(home / "config" / "personas")
    personas.create("dev")
    personas.update("dev", lambda persona: persona.enable("fx"))
    _, token = TokenStore(home / "config" / "tokens.json").create("dev", None)
    config = write_config(tmp_path / "vmcp.toml", {
        "auth": {"driver": "token"},
        "transports.ws": {"port": 0},
        "servers.fx": fixture_mount(),
    })
    async with run_gateway(config, "ws", log=tmp_path / "gateway.log") as gateway:
        url = await gateway.url()
        for headers in (None, {"Authorization": "Bearer vmcp_not-a-token"}):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url, subprotocols=[MCP], additional_headers=headers):
                    pass
            assert refused.value.response.status_code == 401
            assert refused.value.response.headers["WWW-Authenticate"].startswith("Bearer")
        bearer = {"Authorization": f"Bearer {token}"}
        async with ws_session(url, headers=bearer) as (session, _):
            with anyio.fail_after(EVENT_TIMEOUT):
                tools = await session.list_tools()
                assert "fx__echo" in {tool.name for tool in tools.tools}  # the persona's set
                await session.call_tool("fx__echo", {"text": "authenticated"})
