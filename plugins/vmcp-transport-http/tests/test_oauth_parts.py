"""The parts of OAuth toward backends, each on its own: challenges, URLs, the encrypted store,
renewal timing, the configuration rules, and discovery against a real HTTP server."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.fernet import Fernet
from pydantic import ValidationError
from vmcp_transport_http.oauth.client import Pkce, authorization_url
from vmcp_transport_http.oauth.discovery import (
    Challenge,
    DiscoveryError,
    canonical_resource,
    check_url,
    discover,
)
from vmcp_transport_http.oauth.state import sign_ins
from vmcp_transport_http.oauth.store import (
    IN_KEYRING,
    KEY_ENV,
    KEYRING_ENV,
    KEYRING_SERVICE,
    Client,
    Grant,
    GrantStore,
    os_keyring,
)

from vmcp.cli.output import sign_in_summary
from vmcp.config import MountConfig
from vmcp.persona import PersonaStore

pytestmark = pytest.mark.anyio


def test_the_drivers_load_no_oauth_client_until_a_mount_signs_in(tmp_path: Path) -> None:
    """The ``http`` and ``sse`` drivers, front and back, load neither authlib nor the SDK
    (a second of every HTTP gateway's start-up) until a connection of a mount with
    ``oauth`` is made."""
    script = textwrap.dedent(
        """
        import sys
        from vmcp.config import MountConfig
        from vmcp_transport_http.legacy_sse import LegacySseTransport
        from vmcp_transport_http.oauth.choice import authorizer_for
        from vmcp_transport_http.streamable import StreamableHttpTransport

        plain = MountConfig(id="plain", transport="http", url="http://127.0.0.1:1/mcp")
        assert authorizer_for(plain, None) is None
        print(sorted({name.split(".")[0] for name in sys.modules} & {"authlib", "mcp"}))
        signs_in = MountConfig(id="signs-in", transport="http", url="http://127.0.0.1:1/mcp",
                               oauth={"client_id": "vmcp", "grants": "shared"})
        try:
            authorizer_for(signs_in, None)
        except Exception as exc:  # no grant yet: the sign-in is what it asks for
            print(type(exc).__name__)
        print(sorted({name.split(".")[0] for name in sys.modules} & {"authlib", "mcp"}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "VMCP_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["[]", "SignInRequired", "['authlib', 'mcp']"]


def test_challenge_parameters_quoted_or_not() -> None:
    header = ('Bearer error="insufficient_scope", scope="a b", '
              'resource_metadata="https://x.example/.well-known/oauth-protected-resource/mcp",'
              ' error_description=Required')
    challenge = Challenge.parse(header)
    assert challenge.error == "insufficient_scope"
    assert challenge.scope == "a b"
    assert challenge.resource_metadata == (
        "https://x.example/.well-known/oauth-protected-resource/mcp")
    assert challenge.error_description == "Required"
    assert Challenge.parse('Basic realm="x"') == Challenge()
    assert Challenge.parse(None) == Challenge()


def test_canonical_resource_and_allowed_urls() -> None:
    assert canonical_resource("HTTPS://API.Example.com/mcp/#frag") == "https://api.example.com/mcp"
    assert canonical_resource("https://api.example.com/") == "https://api.example.com"
    check_url("https://as.example.com/token")
    check_url("http://127.0.0.1:9000/token")
    check_url("http://localhost/token")
    for refused in ("http://as.example.com/token", "http://10.0.0.1/token", "ftp://127.0.0.1/"):
        with pytest.raises(DiscoveryError, match="must be https"):
            check_url(refused)


def _grant(**changes: Any) -> Grant:
    values: dict[str, Any] = {
        "resource": "https://api.example.com/mcp", "issuer": "https://as.example.com",
        "token_endpoint": "https://as.example.com/token",
        "client": Client("id-1", "secret-1", "client_secret_basic"),
        "access_token": "access-XYZ", "refresh_token": "refresh-XYZ",
        "expires_at": time.time() + 3600, "scope": "mcp:read"}
    values.update(changes)
    return Grant(**values)


def test_grants_are_encrypted_private_and_keyed_by_owner(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    store = GrantStore(tmp_path)
    store.save("crm", "alice", _grant())
    store.save("crm", None, _grant(access_token="service-token"))
    raw = store.path("crm", "alice").read_bytes()
    for secret in (b"access-XYZ", b"refresh-XYZ", b"secret-1"):
        assert secret not in raw
    assert stat.S_IMODE(store.path("crm", "alice").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "oauth.key").stat().st_mode) == 0o600
    loaded = store.load("crm", "alice")
    assert loaded is not None and loaded.access_token == "access-XYZ"
    assert loaded.client.client_secret == "secret-1"
    assert store.owners("crm") == [None, "alice"]
    assert store.load("crm", "bob") is None
    # another key cannot read them: no grant, not a crash
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    assert GrantStore(tmp_path).load("crm", "alice") is None
    monkeypatch.delenv(KEY_ENV)
    assert store.delete("crm", "alice") and not store.delete("crm", "alice")
    assert store.owners("crm") == [None]


def test_grants_live_in_the_os_keyring_when_there_is_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    ring = PlaintextKeyring()
    ring.file_path = str(tmp_path / "keyring.cfg")  # type: ignore[misc]
    monkeypatch.setattr(keyring.core, "_keyring_backend", ring)
    # a file backend is no OS keyring: by default grants stay in encrypted files
    monkeypatch.delenv(KEYRING_ENV, raising=False)
    assert os_keyring() is None
    monkeypatch.setenv(KEYRING_ENV, "off")
    root = tmp_path / "secrets"
    GrantStore(root).save("crm", None, _grant(access_token="in-a-file"))
    monkeypatch.setenv(KEYRING_ENV, "on")
    store = GrantStore(root)
    store.save("crm", "alice", _grant())
    assert store.path("crm", "alice").read_text(encoding="utf-8") == IN_KEYRING
    kept = ring.get_password(KEYRING_SERVICE, f"{root}:crm/alice")
    assert kept is not None and Grant.from_json(kept).access_token == "access-XYZ"
    loaded = GrantStore(root).load("crm", "alice")
    assert loaded is not None and loaded.refresh_token == "refresh-XYZ"
    assert store.owners("crm") == [None, "alice"]
    # a grant kept in a file before is still read
    service = GrantStore(root).load("crm", None)
    assert service is not None and service.access_token == "in-a-file"
    assert store.delete("crm", "alice")
    assert ring.get_password(KEYRING_SERVICE, f"{root}:crm/alice") is None
    assert GrantStore(root).load("crm", "alice") is None


def test_sign_in_states_per_persona(tmp_path: Path) -> None:
    personas = PersonaStore(tmp_path / "personas")
    for name in ("alice", "bob", "dave"):
        personas.save(personas.create(name))
    store = GrantStore(tmp_path / "secrets")
    now = time.time()
    store.save("crm", None, _grant(expires_at=now + 60))  # refreshable: renews itself
    store.save("crm", "alice", _grant(refresh_token=None, expires_at=now + 600))
    store.save("crm", "carol", _grant(expires_at=now - 5))  # no persona file any more
    store.save("crm", "dave", _grant(refresh_token=None, expires_at=now - 5))
    store.path("crm", "bob").write_text("not a Fernet token", encoding="utf-8")
    mount = MountConfig.model_validate({"id": "crm", "transport": "http",
                                        "url": "https://crm.example/mcp",
                                        "isolation": "persona", "oauth": {}})
    rows = sign_ins(mount, store, personas)
    assert [(r["persona"], r["state"]) for r in rows] == [
        (None, "valid"), ("alice", "expiring"), ("bob", "unreadable"),
        ("carol", "expired, refreshable"), ("dave", "expired")]
    assert all("access-XYZ" not in str(r) and "refresh-XYZ" not in str(r) for r in rows)
    summary = sign_in_summary(rows)
    assert summary.startswith("(service) valid until ")
    assert "; alice expiring until " in summary and summary.endswith("; dave expired")
    shared = mount.model_copy(update={"oauth": mount.oauth.model_copy(  # type: ignore[union-attr]
        update={"grants": "shared"})})
    assert [r["persona"] for r in sign_ins(shared, store, personas)] == [None]
    assert [r["state"] for r in sign_ins(shared, GrantStore(tmp_path / "none"),
                                          personas)] == ["signed-out"]
    assert mount.oauth is not None
    exchanging = mount.model_copy(update={"isolation": "session", "oauth": mount.oauth.model_copy(
        update={"grant": "token_exchange", "client_id": "x"})})
    assert [r["persona"] for r in sign_ins(exchanging, store, personas)] == [None]


def test_renewal_is_due_near_expiry_or_past_half_a_short_life() -> None:
    now = time.time()
    assert not _grant(expires_at=now + 3600, obtained_at=now).renewal_due(60)
    assert _grant(expires_at=now + 30, obtained_at=now - 3570).renewal_due(60)
    assert not _grant(expires_at=now + 8, obtained_at=now - 2).renewal_due(60)
    assert _grant(expires_at=now + 4, obtained_at=now - 6).renewal_due(60)
    assert not _grant(expires_at=None).renewal_due(60)


@pytest.mark.parametrize(("mount", "message"), [
    ({"transport": "stdio", "command": "x"}, "only the http, sse and ws transports"),
    ({"headers": {"Authorization": "Bearer x"}, "isolation": "persona"},
     "Authorization header"),
    ({}, 'isolation = "persona"'),
    ({"isolation": "persona", "oauth": {"grant": "client_credentials"}}, "needs a client_id"),
    ({"isolation": "session", "oauth": {"grant": "token_exchange"}}, "needs a client_id"),
    ({"isolation": "persona", "oauth": {"grant": "token_exchange", "client_id": "x"}},
     'token_exchange needs a client_id and isolation = "session"'),
])
def test_oauth_mount_rules(mount: dict[str, Any], message: str) -> None:
    values = {"id": "crm", "transport": "http", "url": "https://api.example.com/mcp",
              "oauth": {}, **mount}
    with pytest.raises(ValidationError, match=message):
        MountConfig.model_validate(values)


@asynccontextmanager
async def site(routes: dict[str, Any]) -> AsyncIterator[str]:
    """A loopback HTTP server answering GET ``path`` with the JSON ``routes[path]``
    (``{base}`` in a string replaced by its own URL); yields that URL."""
    base: list[str] = []

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("{base}", base[0])
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(fill(routes[request.path]))

    app = web.Application()
    for path in routes:
        app.router.add_get(path, answer)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    assert tcp._server is not None
    base.append(f"http://127.0.0.1:{tcp._server.sockets[0].getsockname()[1]}")  # type: ignore[union-attr]
    try:
        yield base[0]
    finally:
        await runner.cleanup()


AS_METADATA = {"issuer": "{base}/tenant", "authorization_endpoint": "{base}/authorize",
               "token_endpoint": "{base}/token", "response_types_supported": ["code"],
               "code_challenge_methods_supported": ["S256"]}


async def test_discovery_through_well_known_fallbacks() -> None:
    # no challenge: the path-aware PRM URL; the AS has a path: OIDC's path-appended form
    routes = {
        "/.well-known/oauth-protected-resource/mcp": {
            "resource": "{base}/mcp", "authorization_servers": ["{base}/tenant"],
            "scopes_supported": ["mcp:read"]},
        "/tenant/.well-known/openid-configuration": AS_METADATA,
    }
    async with site(routes) as base, aiohttp.ClientSession() as http:
        target = await discover(http, f"{base}/mcp", None)
        assert target.resource == f"{base}/mcp"
        assert target.issuer == f"{base}/tenant"
        assert target.scope == "mcp:read"
        url = authorization_url(target, Client("c1"), "http://127.0.0.1:1/callback",
                                target.scope, "st", Pkce())
        assert "code_challenge_method=S256" in url and "resource=" in url


async def test_discovery_refuses_a_wrong_issuer_a_foreign_resource_and_no_pkce() -> None:
    routes = {
        "/prm": {"resource": "{base}/mcp", "authorization_servers": ["{base}/tenant"]},
        "/other": {"resource": "{base}/elsewhere", "authorization_servers": ["{base}/tenant"]},
        "/.well-known/oauth-authorization-server/tenant": {**AS_METADATA,
                                                           "issuer": "{base}/evil"},
        "/.well-known/oauth-protected-resource": {
            "resource": "{base}", "authorization_servers": ["{base}"]},
        "/.well-known/oauth-authorization-server": {
            **AS_METADATA, "issuer": "{base}", "code_challenge_methods_supported": ["plain"]},
    }
    async with site(routes) as base, aiohttp.ClientSession() as http:
        with pytest.raises(DiscoveryError, match="is not the advertised"):
            await discover(http, f"{base}/mcp", Challenge(resource_metadata=f"{base}/prm"))
        with pytest.raises(DiscoveryError, match="names"):
            await discover(http, f"{base}/mcp", Challenge(resource_metadata=f"{base}/other"))
        target = await discover(http, f"{base}/api", None)  # root PRM, root AS
        with pytest.raises(DiscoveryError, match="PKCE"):
            authorization_url(target, Client("c1"), "http://127.0.0.1:1/callback", None,
                              "st", Pkce())
