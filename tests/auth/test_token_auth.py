"""The built-in ``token`` and ``none`` drivers, and the gateway's authentication contract."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from vmcp.auth.base import AuthError, Principal
from vmcp.auth.token import TokenAuth
from vmcp.auth.tokens import TokenStore, TokenStoreError, parse_duration
from vmcp.config import VmcpConfig
from vmcp.gateway.gateway import Gateway

pytestmark = pytest.mark.anyio

HOST = {"Host": "gw.example:8080"}


def bearer(token: str) -> dict[str, str]:
    """Headers carrying a bearer token."""
    return {**HOST, "authorization": f"Bearer {token}"}


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    """A token file in a temporary folder."""
    return TokenStore(tmp_path / "tokens.json")


async def refused(driver: TokenAuth, headers: dict[str, str]) -> AuthError:
    """The error a refused authentication raises."""
    with pytest.raises(AuthError) as error:
        await driver.authenticate(headers)
    return error.value


async def test_valid_wrong_revoked_expired(store: TokenStore) -> None:
    driver = TokenAuth(tokens_file=str(store.path))
    record, token = store.create("coder", timedelta(days=1), "ci")
    assert await driver.authenticate(bearer(token)) == Principal(f"token:{record.id}", "coder")

    wrong = await refused(driver, bearer(token + "x"))
    assert wrong.status == 401
    assert wrong.www_authenticate == (
        'Bearer error="invalid_token", error_description="invalid or revoked token", '
        'resource_metadata="http://gw.example:8080/.well-known/oauth-protected-resource"')

    store.revoke(record.id)  # takes effect at once: the driver re-reads the changed file
    assert "revoked" in str(await refused(driver, bearer(token)))

    _, old = store.create("coder", timedelta(seconds=-1))
    expired = await refused(driver, bearer(old))
    assert expired.status == 401 and "expired" in str(expired)

    missing = await refused(driver, HOST)
    assert missing.www_authenticate == (
        'Bearer resource_metadata="http://gw.example:8080/.well-known/oauth-protected-resource"')
    basic = await refused(driver, {**HOST, "Authorization": "Basic dXNlcjpwdw=="})
    assert basic.status == 401


async def test_unreadable_token_file_refuses_everyone(store: TokenStore) -> None:
    driver = TokenAuth(tokens_file=str(store.path))
    _, token = store.create("coder", None)
    store.path.write_text("{broken", encoding="utf-8")
    assert (await refused(driver, bearer(token))).status == 401
    with pytest.raises(TokenStoreError, match="not a token file"):
        store.load()


def test_store_keeps_hashes_only(store: TokenStore) -> None:
    record, token = store.create("coder", None, "label")
    data = json.loads(store.path.read_text(encoding="utf-8"))
    assert token not in json.dumps(data)
    assert data["tokens"][0]["sha256"] == record.sha256 and record.expires is None
    assert store.path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(TokenStoreError, match="unknown token id"):
        store.revoke("nope")


@pytest.mark.parametrize(("text", "expected"), [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("45m", timedelta(minutes=45)),
    ("90s", timedelta(seconds=90)), ("2w", timedelta(weeks=2)), ("never", None)])
def test_durations(text: str, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "0d", "5", "3y", "-1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


async def test_gateway_authenticate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMCP_HOME", str(tmp_path))
    # none: anonymous, loopback only, and no persona filter installed (hot path stays free)
    open_gateway = Gateway(VmcpConfig())
    assert not open_gateway.auth_required
    assert await open_gateway.authenticate({}) == Principal("anonymous")
    assert open_gateway.visible is None and open_gateway.access is None

    config = VmcpConfig.model_validate({"auth": {
        "driver": "token", "resource": "https://gw.example/mcp"}})
    gateway = Gateway(config)
    assert gateway.auth_required and gateway.visible is not None
    _, token = TokenStore.default().create("coder", None)
    assert (await gateway.authenticate(bearer(token))).persona == "coder"
    with pytest.raises(AuthError) as error:
        await gateway.authenticate({})
    assert error.value.status == 401
    assert error.value.www_authenticate == (
        'Bearer resource_metadata="https://gw.example/.well-known/oauth-protected-resource/mcp"')


def test_default_persona_and_default_principal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMCP_HOME", str(tmp_path))
    config = VmcpConfig.model_validate({"gateway": {"default_persona": "guest"}})
    gateway = Gateway(config, Principal("stdio", "coder"))
    assert gateway.effective_principal(None) == Principal("stdio", "coder")
    assert gateway.effective_principal(Principal("anonymous")) == Principal("anonymous", "guest")
    assert gateway.effective_principal(Principal("t", "ops")) == Principal("t", "ops")
    assert Gateway(config).effective_principal(None) == Principal("local", "guest")
    assert Gateway(VmcpConfig()).effective_principal(None) is None
