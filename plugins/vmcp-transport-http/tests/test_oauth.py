"""OAuth toward backends, end to end with real parts.

A real authorization server (``oauth_server.py``, authlib) and a protected SDK backend
(``oauth_backend.py``, which checks audience and scope at the server) run as processes on free
ports. ``vmcp auth login`` is run as a process; the test follows the URL it prints with an HTTP
client that consents, which sends the redirect to vmcp's loopback receiver. The gateway
(``vmcp start -t http`` with token auth and personas) then calls the backend with each
persona's own grant.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import httpx2
import pytest
from anyio.streams.text import TextReceiveStream
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from http_harness import START_TIMEOUT, run_gateway, stop_process, write_config
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from vmcp_transport_http.oauth.client import refresh
from vmcp_transport_http.oauth.login import SignInError, sign_in
from vmcp_transport_http.oauth.store import Grant, GrantStore

from vmcp.auth.tokens import TokenStore
from vmcp.config import load_config
from vmcp.persona import PersonaStore
from vmcp.testing import serving_script

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

HERE = Path(__file__).resolve().parent
#: seconds a sign-in or a call through the gateway may take
CALL_TIMEOUT = 30.0


def serving(script: str, *args: str) -> AbstractAsyncContextManager[str]:
    """Run ``script`` (which prints ``PORT n``); yield ``http://127.0.0.1:n``; end it."""
    return serving_script([sys.executable, str(HERE / script), *args], START_TIMEOUT)


@asynccontextmanager
async def world(tmp_path: Path, *backend_flags: str,
                as_flags: tuple[str, ...] = ()) -> AsyncIterator[tuple[str, str, Path]]:
    """An authorization server and a protected backend; yields (AS URL, MCP URL, header log)."""
    log = tmp_path / "backend-headers.log"
    log.touch()
    async with (serving("oauth_server.py", *as_flags) as issuer,
                serving("oauth_backend.py", issuer, str(log), *backend_flags) as backend):
        yield issuer, f"{backend}/{'sse' if '--sse' in backend_flags else 'mcp'}", log


def config_for(tmp_path: Path, url: str, oauth: dict[str, Any], **mount: Any) -> Path:
    """A ``vmcp.toml`` with one OAuth mount ``crm``, token auth and an HTTP front."""
    tables: dict[str, dict[str, Any]] = {
        "servers.crm": {"transport": "http", "url": url, "isolation": "persona", **mount},
        "servers.crm.oauth": oauth,
        "auth": {"driver": "token"},
        "transports.http": {"port": 0},
    }
    return write_config(tmp_path / "config" / "vmcp.toml", tables)


def env_for(config: Path) -> dict[str, str]:
    """The environment of a ``vmcp`` process using ``config`` (its home beside it)."""
    return {**os.environ, "VMCP_HOME": str(config.parent / "home")}


async def consent(url: str, user: str, deny: bool = False) -> str:
    """Act as the person: open the authorization URL, consent as ``user``, follow the
    redirect to vmcp's loopback receiver; return the page it answered."""
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as page:
            assert page.status == 200, await page.text()
        form = {"deny": "1"} if deny else {"user": user}
        async with http.post(url, data=form, allow_redirects=False) as answer:
            assert answer.status == 302, await answer.text()
            callback = answer.headers["Location"]
        assert callback.startswith("http://127.0.0.1:")
        async with http.get(callback) as done:
            return await done.text()


async def login(config: Path, user: str, *args: str,
                deny: bool = False) -> tuple[int, str, str]:
    """Run ``vmcp auth login crm ARGS --no-browser``, consent as ``user``; return the exit
    status, stderr and stdout (with ``--json`` the sign-in URL is on stderr, not stdout)."""
    process = await anyio.open_process(
        [sys.executable, "-m", "vmcp", "--config", str(config), "auth", "login", "crm",
         "--no-browser", "--timeout", str(CALL_TIMEOUT), *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env_for(config))
    try:
        assert process.stdout is not None and process.stderr is not None
        shown_on = process.stderr if "--json" in args else process.stdout
        with anyio.fail_after(CALL_TIMEOUT):
            said = ""
            async for chunk in TextReceiveStream(shown_on):
                said += chunk
                url = next((line for line in said.splitlines(keepends=True)
                            if line.startswith("http") and line.endswith("\n")), None)
                if url is not None:
                    break
            assert url is not None and url.startswith("http://127.0.0.1:"), said
            await consent(url.strip(), user, deny)
            rest = {"err": b"", "out": b""}

            async def read(name: str, stream: Any) -> None:
                async for more in stream:
                    rest[name] += more

            async with anyio.create_task_group() as group:
                group.start_soon(read, "err", process.stderr)
                group.start_soon(read, "out", process.stdout)
            await process.wait()
        return process.returncode or 0, said + rest["err"].decode(), rest["out"].decode()
    finally:
        await stop_process(process)


async def run_vmcp(config: Path, *args: str) -> tuple[int, str, str]:
    """Run one ``vmcp`` command to its end; return status, stdout, stderr."""
    with anyio.fail_after(CALL_TIMEOUT):
        result = await anyio.run_process(
            [sys.executable, "-m", "vmcp", "--config", str(config), *args],
            env=env_for(config), check=False, stdin=subprocess.DEVNULL)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def personas_with_tokens(config: Path, *names: str) -> dict[str, str]:
    """Create personas that may use ``crm`` and a front token for each."""
    home = config.parent / "home"
    personas = PersonaStore(home / "config" / "personas")
    tokens = TokenStore(home / "config" / "tokens.json")
    issued: dict[str, str] = {}
    for name in names:
        persona = personas.create(name)
        persona.enable("crm")
        personas.save(persona)
        _, issued[name] = tokens.create(name, timedelta(hours=1))
    return issued


@asynccontextmanager
async def front(url: str, token: str) -> AsyncIterator[ClientSession]:
    """An SDK client of the gateway's HTTP front, presenting ``token``."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=60)))
        read, write = await stack.enter_async_context(streamable_http_client(url, http_client=http))
        session = await stack.enter_async_context(ClientSession(read, write))
        with anyio.fail_after(CALL_TIMEOUT):
            await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> tuple[bool, str]:
    """Call ``crm__<tool>``; return (is_error, text): a tool error or a JSON-RPC error."""
    with anyio.fail_after(CALL_TIMEOUT):
        try:
            result = await session.call_tool(f"crm__{tool}", arguments)
        except MCPError as exc:
            return True, exc.error.message
    text = "".join(getattr(part, "text", "") for part in result.content)
    return bool(result.is_error), text


async def admin(issuer: str, path: str) -> Any:
    """One of the authorization server's test controls."""
    async with aiohttp.ClientSession() as http:
        method = http.get if path.startswith("token-requests") else http.post
        async with method(f"{issuer}/admin/{path}") as response:
            assert response.status == 200
            return await response.json()


def store_of(config: Path) -> GrantStore:
    """The grant store of the gateway run with ``config``."""
    return GrantStore(config.parent / "home" / "secrets")


async def sign_in_as(config: Path, owner: str | None, user: str, deny: bool = False,
                     scope: str | None = None) -> Grant:
    """Sign in in-process (the library behind ``vmcp auth login``), consenting as ``user``."""
    settings = load_config(config)[0].servers["crm"]
    consents: list[asyncio.Task[str]] = []

    def show(url: str) -> None:
        consents.append(asyncio.get_running_loop().create_task(consent(url, user, deny)))

    try:
        with anyio.fail_after(CALL_TIMEOUT):
            return await sign_in(settings, owner, store_of(config), show, scope, CALL_TIMEOUT)
    finally:
        for task in consents:
            await task


async def test_two_personas_sign_in_and_see_only_their_own_data(tmp_path: Path) -> None:
    async with world(tmp_path) as (_, url, log):
        config = config_for(tmp_path, url, {})  # dynamic client registration
        front_tokens = personas_with_tokens(config, "alice", "bob")
        # the service grant serves the mount's lists; each persona signs in for its calls
        for user, persona in (("svc", None), ("alice", "alice")):
            status, err, _ = await login(config, user,
                                         *(("--persona", persona) if persona else ()))
            assert status == 0, err
            assert "signed in to crm" in err
        status, err, out = await login(config, "bob", "--persona", "bob", "--json")
        assert status == 0, err
        signed_in = json.loads(out)
        assert signed_in["mount"] == "crm" and signed_in["persona"] == "bob"
        assert signed_in["state"] == "valid" and signed_in["client"] == "registered"
        # grants are encrypted at rest: no token appears in the files
        store = GrantStore(config.parent / "home" / "secrets")
        alice = store.load("crm", "alice")
        assert alice is not None and alice.client.origin == "registered"
        stored = store.path("crm", "alice").read_bytes()
        assert alice.access_token.encode() not in stored
        assert alice.refresh_token is not None and alice.refresh_token.encode() not in stored

        async with (run_gateway(config, "http") as gateway,
                    front(gateway.url, front_tokens["alice"]) as as_alice,
                    front(gateway.url, front_tokens["bob"]) as as_bob):
            failed, who = await call(as_alice, "whoami")
            assert not failed and json.loads(who)["sub"] == "alice"
            failed, who = await call(as_bob, "whoami")
            assert not failed and json.loads(who)["sub"] == "bob"
            await call(as_alice, "note", text="alice's secret")
            await call(as_bob, "note", text="bob's plan")
            assert json.loads((await call(as_alice, "notes"))[1]) == ["alice's secret"]
            assert json.loads((await call(as_bob, "notes"))[1]) == ["bob's plan"]

        # no front token ever reached the backend; every bearer it saw was issued by the AS
        seen = log.read_text().splitlines()
        assert seen
        for token in front_tokens.values():
            assert all(token not in line for line in seen)
        status, out, _ = await run_vmcp(config, "auth", "status", "--json")
        rows = {row["persona"]: row for row in json.loads(out)}
        assert set(rows) == {None, "alice", "bob"} and rows["alice"]["state"] == "valid"
        assert all(alice.access_token not in line for line in out.splitlines())


async def test_mount_table_info_and_status_show_sign_ins(tmp_path: Path) -> None:
    async with world(tmp_path) as (_, url, _):
        config = config_for(tmp_path, url, {})
        personas_with_tokens(config, "alice", "bob", "carol")
        await sign_in_as(config, None, "svc")
        alice = await sign_in_as(config, "alice", "alice")
        # bob's grant cannot renew itself and ends soon; carol never signed in
        bob = await sign_in_as(config, "bob", "bob")
        bob.refresh_token, bob.expires_at = None, time.time() + 600
        store_of(config).save("crm", "bob", bob)
        async with run_gateway(config, "http"):
            code, out, err = await run_vmcp(config, "list", "--json")
            assert code == 0, err
            states = {row["persona"]: row["state"] for row in json.loads(out)[0]["sign_ins"]}
            assert states == {None: "valid", "alice": "valid", "bob": "expiring",
                              "carol": "signed-out"}
            code, out, err = await run_vmcp(config, "info", "crm")
            assert code == 0, err
            assert "sign-in: (service) valid until " in out
            assert "; bob expiring until " in out and out.rstrip().count("carol signed-out")
            code, out, err = await run_vmcp(config, "status")
            assert code == 0, err
            needing = out.split("grants needing a sign-in", 1)[1].splitlines()
            assert [line.split()[:3] for line in needing[1:]] == [["crm", "bob", "expiring"]]
            assert alice.access_token not in out and bob.access_token not in out


async def test_refresh_on_401_and_refused_grants_fail_clearly(tmp_path: Path) -> None:
    async with world(tmp_path) as (issuer, url, _):
        config = config_for(tmp_path, url, {})
        front_tokens = personas_with_tokens(config, "alice", "bob", "carol")
        for owner in (None, "alice", "bob"):
            await sign_in_as(config, owner, owner or "svc")
        async with run_gateway(config, "http") as gateway:
            async with front(gateway.url, front_tokens["alice"]) as as_alice:
                assert not (await call(as_alice, "whoami"))[0]
                # every access token dies at the server: the backend answers 401, vmcp
                # refreshes (the server rotates the refresh token) and sends the call again
                await admin(issuer, "expire")
                failed, who = await call(as_alice, "whoami")
                assert not failed and json.loads(who)["sub"] == "alice", who
                assert "refresh_token" in await admin(issuer, "token-requests")
                renewed = store_of(config).load("crm", "alice")
                assert renewed is not None

            # bob's grant is revoked: the refresh is refused, the call fails and says how
            # to sign in again
            await admin(issuer, "revoke?user=bob")
            async with front(gateway.url, front_tokens["bob"]) as as_bob:
                failed, message = await call(as_bob, "whoami")
                assert failed
                assert "vmcp auth login crm --persona bob" in message, message
                assert "refused" in message

            # carol never signed in: refused at once, nothing sent to the backend
            async with front(gateway.url, front_tokens["carol"]) as as_carol:
                failed, message = await call(as_carol, "whoami")
                assert failed
                assert "has not signed in" in message
                assert "vmcp auth login crm --persona carol" in message


async def test_refresh_before_expiry(tmp_path: Path) -> None:
    # tokens live 5 s: the grant is renewed before it is used once it is past half its life
    async with world(tmp_path, as_flags=("--expires-in", "5")) as (issuer, url, log):
        config = config_for(tmp_path, url, {"grants": "shared"}, isolation="shared")
        front_tokens = personas_with_tokens(config, "alice")
        first = await sign_in_as(config, None, "svc")
        await anyio.sleep(first.expires_at - first.obtained_at)  # the token's life, no event
        async with (run_gateway(config, "http") as gateway,
                    front(gateway.url, front_tokens["alice"]) as session):
            failed, who = await call(session, "whoami")
            assert not failed and json.loads(who)["sub"] == "svc"
        requests = await admin(issuer, "token-requests")
        assert requests[0] == "authorization_code" and "refresh_token" in requests[1:]
        renewed = store_of(config).load("crm", None)
        assert renewed is not None and renewed.access_token != first.access_token
        # the expired token was never sent: it was renewed first, not after a 401
        assert all(first.access_token not in line for line in log.read_text().splitlines())


async def test_client_credentials_with_client_secret_post(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACHINE_SECRET", "m4chine")
    async with world(tmp_path) as (issuer, url, _):
        config = config_for(tmp_path, url, {
            "grant": "client_credentials", "grants": "shared", "client_id": "machine",
            "client_secret": "${MACHINE_SECRET}",
            "token_endpoint_auth_method": "client_secret_post"}, isolation="shared")
        front_tokens = personas_with_tokens(config, "alice")
        async with (run_gateway(config, "http") as gateway,
                    front(gateway.url, front_tokens["alice"]) as session):
            failed, who = await call(session, "whoami")
            assert not failed and json.loads(who)["sub"] == "machine", who
        assert await admin(issuer, "token-requests") == ["client_credentials"]
        grant = store_of(config).load("crm", None)
        assert grant is not None and grant.client.auth_method == "client_secret_post"


async def test_preregistered_client_iss_denial_and_logout(tmp_path: Path) -> None:
    async with world(tmp_path, as_flags=("--iss",)) as (issuer, url, _):
        config = config_for(tmp_path, url, {
            "client_id": "confidential", "client_secret": "s3cret"})
        with pytest.raises(SignInError, match="access_denied"):
            await sign_in_as(config, "alice", "alice", deny=True)
        assert store_of(config).load("crm", "alice") is None
        grant = await sign_in_as(config, "alice", "alice")
        assert grant.client.origin == "configured"
        assert grant.client.auth_method == "client_secret_basic"
        assert grant.scope == "mcp:read"
        status, out, err = await run_vmcp(config, "auth", "logout", "crm", "--persona", "alice",
                                          "--json")
        assert status == 0, err
        assert json.loads(out) == {"mount": "crm", "persona": "alice", "signed_out": True}
        assert store_of(config).load("crm", "alice") is None
        async with aiohttp.ClientSession() as http, http.post(
                f"{issuer}/introspect", data={"token": grant.access_token}) as answer:
            assert (await answer.json())["active"] is False


async def test_step_up_on_insufficient_scope(tmp_path: Path) -> None:
    async with world(tmp_path, "--scope", "mcp:read", "--scope", "mcp:admin") as (_, url, _):
        # the mount asks for less than the backend requires
        config = config_for(tmp_path, url, {"scopes": ["mcp:read"]})
        front_tokens = personas_with_tokens(config, "alice")
        await sign_in_as(config, None, "svc", scope="mcp:admin")
        await sign_in_as(config, "alice", "alice")
        async with (run_gateway(config, "http") as gateway,
                    front(gateway.url, front_tokens["alice"]) as session):
            # alice's grant lacks mcp:admin: the backend answers 403, the call fails at once
            # (no retry loop) and says how to sign in with more scope
            failed, message = await call(session, "whoami")
            assert failed
            assert "Required scope: mcp:admin" in message, message
            assert "vmcp auth login crm --persona alice --scope" in message
            # stepping up keeps the old scope and adds the new one; the next connection
            # of alice's uses it
            grant = await sign_in_as(config, "alice", "alice", scope="mcp:admin")
            assert grant.scope is not None
            assert set(grant.scope.split()) == {"mcp:read", "mcp:admin"}
            failed, who = await call(session, "whoami")
            assert not failed and json.loads(who)["sub"] == "alice", who


async def test_an_sse_backend_signs_in_the_same_way(tmp_path: Path) -> None:
    async with world(tmp_path, "--sse") as (issuer, url, log):
        config = config_for(tmp_path, url, {"grants": "shared"}, transport="sse",
                            isolation="shared")
        front_tokens = personas_with_tokens(config, "alice")
        first = await sign_in_as(config, None, "svc")
        async with (run_gateway(config, "http") as gateway,
                    front(gateway.url, front_tokens["alice"]) as session):
            assert json.loads((await call(session, "whoami"))[1])["sub"] == "svc"
            await admin(issuer, "expire")
            # the event stream stays open; the next POST gets 401 and is sent again renewed
            failed, who = await call(session, "whoami")
            assert not failed and json.loads(who)["sub"] == "svc", who
        assert any(first.access_token in line for line in log.read_text().splitlines())
        assert "refresh_token" in await admin(issuer, "token-requests")


async def test_private_key_jwt_client_authentication(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = tmp_path / "client-key.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public = tmp_path / "client-key.pub.pem"
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    async with world(tmp_path, as_flags=("--key-client", str(public))) as (_, url, _):
        config = config_for(tmp_path, url, {
            "grant": "client_credentials", "grants": "shared", "client_id": "keyed",
            "private_key_file": str(private)}, isolation="shared")
        front_tokens = personas_with_tokens(config, "alice")
        async with (run_gateway(config, "http") as gateway,
                    front(gateway.url, front_tokens["alice"]) as session):
            failed, who = await call(session, "whoami")
            assert not failed and json.loads(who)["sub"] == "keyed", who
        grant = store_of(config).load("crm", None)
        assert grant is not None and grant.client.auth_method == "private_key_jwt"
        assert grant.client.key_file == str(private) and grant.client.client_secret is None


async def test_client_id_metadata_document(tmp_path: Path) -> None:
    async with world(tmp_path) as (issuer, url, _):
        config = config_for(tmp_path, url, {"client_metadata_url": f"{issuer}/cimd"})
        grant = await sign_in_as(config, "alice", "alice")
        assert grant.client.client_id == f"{issuer}/cimd"
        assert grant.client.origin == "metadata_document"
        assert grant.client.auth_method == "none"
        async with aiohttp.ClientSession() as http:
            renewed = await refresh(http, grant)
        assert renewed.access_token != grant.access_token
        assert await admin(issuer, "token-requests") == ["authorization_code", "refresh_token"]
