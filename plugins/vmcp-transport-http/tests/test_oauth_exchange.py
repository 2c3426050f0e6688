"""RFC 8693 token exchange toward a protected backend, end to end with real parts.

The gateway's front authenticates callers by JWT (the ``jwt`` driver, HS256 with a key the
test makes); a mount with ``grant = "token_exchange"`` trades each caller's JWT at the real
authorization server (``oauth_server.py``, which verifies the JWT as the front does) for a
token to the protected SDK backend (``oauth_backend.py``, which checks audience and scope).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from http_harness import run_gateway, write_config
from test_oauth import admin, call, front, run_vmcp, serving
from vmcp_transport_http.oauth.client import TOKEN_EXCHANGE, client_identity, exchange_token
from vmcp_transport_http.oauth.contract import SignInRequired
from vmcp_transport_http.oauth.discovery import AuthorizationTarget, discover
from vmcp_transport_http.oauth.exchange import ExchangeAuthorizer

from vmcp.auth.base import Principal
from vmcp.config import MountConfig, load_config
from vmcp.persona import PersonaStore

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

#: the audience the gateway's front accepts JWTs for
FRONT = "http://127.0.0.1/vmcp"


def caller_jwt(key: str, subject: str, lifetime: float = 600) -> str:
    """A JWT for the gateway's front, as its callers' identity provider would issue it."""
    return jwt.encode({"sub": subject, "aud": FRONT, "exp": int(time.time() + lifetime)},
                      key, "HS256")


async def exchanges(issuer: str) -> list[dict[str, Any]]:
    """Every token exchange the authorization server answered."""
    async with aiohttp.ClientSession() as http, http.get(f"{issuer}/admin/exchanges") as answer:
        assert answer.status == 200
        return await answer.json()  # type: ignore[no-any-return]


@asynccontextmanager
async def world(tmp_path: Path, key: str, *as_flags: str) -> AsyncIterator[tuple[str, str, Path]]:
    """The authorization server (trusting JWTs signed with ``key``) and a protected backend;
    yields (AS URL, MCP URL, the backend's header log)."""
    log = tmp_path / "backend-headers.log"
    log.touch()
    async with (serving("oauth_server.py", "--subject-key", key, "--subject-audience", FRONT,
                        *as_flags) as issuer,
                serving("oauth_backend.py", issuer, str(log)) as backend):
        yield issuer, f"{backend}/mcp", log


def config_for(tmp_path: Path, url: str, key: str, **oauth: Any) -> Path:
    """A ``vmcp.toml``: JWT auth at the front, one token exchange mount ``crm``."""
    config = write_config(tmp_path / "config" / "vmcp.toml", {
        "servers.crm": {"transport": "http", "url": url, "isolation": "session"},
        "servers.crm.oauth": {"grant": "token_exchange", "client_id": "exchanger",
                              "client_secret": "x-secret", **oauth},
        "auth": {"driver": "jwt", "key": key, "algorithms": ["HS256"], "audience": FRONT,
                 "default_persona": "users", "leeway": 0},
        "transports.http": {"port": 0},
    })
    personas = PersonaStore(config.parent / "home" / "config" / "personas")
    persona = personas.create("users")  # both callers act as the same persona
    persona.enable("crm")
    personas.save(persona)
    return config


async def test_each_jwt_caller_gets_its_own_backend_token(tmp_path: Path) -> None:
    key = secrets.token_hex(32)
    async with world(tmp_path, key) as (issuer, url, log):
        config = config_for(tmp_path, url, key, subject_token_type="jwt",
                            audience="crm-backend")
        alice, bob = caller_jwt(key, "alice"), caller_jwt(key, "bob")
        async with (run_gateway(config, "http") as gateway,
                    front(gateway.url, alice) as as_alice,
                    front(gateway.url, bob) as as_bob):
            failed, who = await call(as_alice, "whoami")
            assert not failed and json.loads(who)["sub"] == "alice", who
            failed, who = await call(as_bob, "whoami")
            assert not failed and json.loads(who)["sub"] == "bob", who
            await call(as_alice, "note", text="alice's secret")
            await call(as_bob, "note", text="bob's plan")
            assert json.loads((await call(as_alice, "notes"))[1]) == ["alice's secret"]
            assert json.loads((await call(as_bob, "notes"))[1]) == ["bob's plan"]
            # a second session of alice's reuses her exchanged token (cached until expiry)
            async with front(gateway.url, caller_jwt(key, "alice")) as again:
                assert json.loads((await call(again, "notes"))[1]) == ["alice's secret"]

        answered = await exchanges(issuer)
        assert sorted(e["subject"] for e in answered) == ["alice", "bob"]
        for exchange in answered:
            assert exchange == {"subject": exchange["subject"], "resource": url,
                                "audience": "crm-backend",
                                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt"}
        # the lists went over the client credentials grant of the same client
        assert "client_credentials" in await admin(issuer, "token-requests")
        # the callers' JWTs went to the authorization server only: the backend saw three
        # bearers of its own (the lists', alice's, bob's), never a caller's token
        seen = log.read_text().splitlines()
        assert len(set(seen)) == 3, seen
        assert all(alice not in line and bob not in line for line in seen)


async def test_refused_subject_tokens_and_audience(tmp_path: Path) -> None:
    key = secrets.token_hex(32)
    async with world(tmp_path, key) as (issuer, url, _):
        config = config_for(tmp_path, url, key)
        mount: MountConfig = load_config(config)[0].servers["crm"]
        async with aiohttp.ClientSession() as http:
            works = ExchangeAuthorizer(mount, Principal("alice", credential=caller_jwt(key,
                                                                                   "alice")))
            assert (await works.header(http)).startswith("Bearer ")
            expired = ExchangeAuthorizer(mount, Principal(
                "carol", credential=caller_jwt(key, "carol", lifetime=-5)))
            with pytest.raises(SignInRequired, match=r"caller 'carol'.*the subject token has "
                               r"expired"):
                await expired.header(http)
            # a newer session of carol's brings a fresh token: the older session's next
            # exchange presents that one
            ExchangeAuthorizer(mount, Principal("carol", credential=caller_jwt(key, "carol")))
            assert (await expired.header(http)).startswith("Bearer ")
            forged = ExchangeAuthorizer(mount, Principal(
                "dave", credential=caller_jwt(secrets.token_hex(32), "dave")))
            with pytest.raises(SignInRequired, match="invalid_grant: the subject token is "
                               "invalid"):
                await forged.header(http)
            # a caller authenticated without a bearer token (the token driver's principal)
            with pytest.raises(SignInRequired, match="presented none"):
                ExchangeAuthorizer(mount, Principal("token:1", "users"))

            # the backend checks the audience: a token exchanged for another resource is
            # refused, the one for the backend is taken
            target = await discover(http, url, None)
            client = await client_identity(http, mount.oauth, target, None)  # type: ignore[arg-type]
            elsewhere = AuthorizationTarget("http://127.0.0.1:9/other", target.issuer,
                                            target.metadata, target.scope)
            for where, status in ((elsewhere, 401), (target, 200)):
                grant = await exchange_token(http, where, client, caller_jwt(key, "erin"),
                                             "access_token", None, "mcp:read")
                async with http.post(url, json={
                        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                            "protocolVersion": "2025-06-18", "capabilities": {},
                            "clientInfo": {"name": "probe", "version": "1"}}},
                        headers={"Authorization": f"Bearer {grant.access_token}",
                                 "Accept": "application/json, text/event-stream"}) as answer:
                    assert answer.status == status
        assert {e["subject"] for e in await exchanges(issuer)} == {"alice", "carol", "erin"}

        # `vmcp auth login` obtains the service grant ahead of time; personas hold none
        status, out, err = await run_vmcp(config, "auth", "login", "crm", "--json")
        assert status == 0, err
        assert json.loads(out)["persona"] is None  # the service grant
        status, _, err = await run_vmcp(config, "auth", "login", "crm", "--persona", "users")
        assert status == 1 and "exchanges each caller's own token" in err, err
        assert await admin(issuer, "token-requests") == [
            *[TOKEN_EXCHANGE] * 4, "client_credentials"]


async def test_a_server_without_token_exchange_is_refused_at_start(tmp_path: Path) -> None:
    key = secrets.token_hex(32)
    async with world(tmp_path, key, "--no-exchange") as (_, url, _):
        config = config_for(tmp_path, url, key)
        async with (run_gateway(config, "http") as gateway,
                    front(gateway.url, caller_jwt(key, "alice")) as session):
            failed, message = await call(session, "whoami")
            assert failed
        # the mount does not come up, and the log says why
        assert message == "Unknown tool: crm__whoami"
        said = "".join(gateway.stderr)
        assert "mount crm failed to start" in said and (
            "does not offer token exchange (RFC 8693)" in said), said
