"""The ``jwt`` driver against real keys and a JWKS served over HTTP on a free port."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwks_server import JwksServer
from vmcp_auth_jwt.driver import JwtAuth

from vmcp.auth.base import AuthError, Principal
from vmcp.plugins import load_driver

pytestmark = pytest.mark.anyio

RESOURCE = "https://gw.example/mcp"
ISSUER = "https://as.example"
HOST = {"Host": "gw.example"}


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a good token (for ``RESOURCE``, from ``ISSUER``, valid for an hour)."""
    now = int(time.time())
    return {"sub": "alice", "aud": RESOURCE, "iss": ISSUER, "iat": now, "exp": now + 3600,
            "scope": "mcp read", "vmcp_persona": "coder", **overrides}


def sign(key: Any, kid: str | None = "k1", alg: str = "RS256", **overrides: Any) -> str:
    """A JWT signed with ``key``."""
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers=headers)


def bearer(token: str) -> dict[str, str]:
    """Headers presenting ``token``."""
    return {**HOST, "Authorization": f"Bearer {token}"}


def driver(jwks: JwksServer, **settings: Any) -> JwtAuth:
    """A driver verifying against the test JWKS (the ``[auth]`` settings a gateway passes)."""
    return JwtAuth(**{"resource": RESOURCE, "authorization_servers": [ISSUER],
                      "jwks_url": jwks.url, "issuer": ISSUER, **settings})


async def refusal(auth: JwtAuth, token: str) -> AuthError:
    """The error ``token`` is refused with."""
    with pytest.raises(AuthError) as error:
        await auth.authenticate(bearer(token))
    return error.value


async def test_valid_token_maps_its_claim_to_a_persona(
    jwks: JwksServer, rsa_key: Any, ec_key: Any
) -> None:
    jwks.publish("k1", rsa_key)
    jwks.publish("k2", ec_key)
    auth = driver(jwks)
    assert await auth.authenticate(bearer(sign(rsa_key))) == Principal("alice", "coder")
    assert await auth.authenticate(bearer(sign(ec_key, "k2", "ES256", sub="bob"))) == (
        Principal("bob", "coder"))
    assert jwks.fetches == 1  # the key set is cached
    mapped = driver(jwks, personas={"team-a": "support"})
    token = sign(rsa_key, vmcp_persona="team-a")
    assert (await mapped.authenticate(bearer(token))).persona == "support"


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"aud": "https://elsewhere.example/mcp"}, "not for this server"),
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"iss": "https://evil.example"}, "wrong issuer"),
    ({"exp": None}, "invalid token"),
])
async def test_bad_claims_are_refused(
    jwks: JwksServer, rsa_key: Any, overrides: dict[str, Any], reason: str
) -> None:
    jwks.publish("k1", rsa_key)
    payload = {k: v for k, v in claims(**overrides).items() if v is not None}
    error = await refusal(driver(jwks), jwt.encode(payload, rsa_key, "RS256", {"kid": "k1"}))
    assert error.status == 401 and reason in str(error)
    assert error.www_authenticate is not None
    assert error.www_authenticate.startswith('Bearer error="invalid_token"')
    assert 'resource_metadata="https://gw.example/.well-known/oauth-protected-resource/mcp"' in (
        error.www_authenticate)


async def test_bad_signature_and_unknown_key(
    jwks: JwksServer, rsa_key: Any, other_rsa_key: Any
) -> None:
    jwks.publish("k1", rsa_key)
    auth = driver(jwks, jwks_min_refresh=60)
    forged = await refusal(auth, sign(other_rsa_key, kid="k1"))  # a published kid, wrong key
    assert forged.status == 401 and "bad token signature" in str(forged)
    unknown = await refusal(auth, sign(other_rsa_key, kid="k9"))
    assert unknown.status == 401 and "unknown key" in str(unknown)
    await refusal(auth, sign(other_rsa_key, kid="k8"))
    assert jwks.fetches == 1  # unknown key ids cannot make the gateway hammer the JWKS


async def test_a_rotated_key_is_fetched(jwks: JwksServer, rsa_key: Any, ec_key: Any) -> None:
    jwks.publish("k1", rsa_key)
    auth = driver(jwks, jwks_min_refresh=0)
    assert await auth.authenticate(bearer(sign(rsa_key)))
    jwks.publish("k2", ec_key)
    assert await auth.authenticate(bearer(sign(ec_key, "k2", "ES256")))
    assert jwks.fetches == 2


async def test_algorithms(jwks: JwksServer, rsa_key: Any) -> None:
    jwks.publish("k1", rsa_key)
    auth = driver(jwks)
    unsigned = jwt.encode(claims(), None, algorithm="none", headers={"kid": "k1"})
    assert "algorithm not accepted" in str(await refusal(auth, unsigned))
    # An HS256 token where an asymmetric one is expected (the algorithm-confusion attack).
    confused = jwt.encode(claims(), "k" * 32, algorithm="HS256", headers={"kid": "k1"})
    assert "algorithm not accepted" in str(await refusal(auth, confused))
    assert "malformed token" in str(await refusal(auth, "not.a.jwt"))


async def test_static_keys(rsa_key: Any) -> None:
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    auth = JwtAuth(resource=RESOURCE, key=public_pem, issuer=ISSUER)
    assert await auth.authenticate(bearer(sign(rsa_key, kid=None))) == Principal("alice", "coder")
    shared = JwtAuth(audience=RESOURCE, key="s3cret-s3cret-s3cret-s3cret-s3cret!",
                     algorithms=["HS256"])
    token = sign("s3cret-s3cret-s3cret-s3cret-s3cret!", kid=None, alg="HS256")
    assert (await shared.authenticate(bearer(token))).name == "alice"
    error = await refusal(shared, sign("another-secret-another-secret-00", kid=None, alg="HS256"))
    assert "bad token signature" in str(error)


async def test_scopes_and_personas_give_403(jwks: JwksServer, rsa_key: Any) -> None:
    jwks.publish("k1", rsa_key)
    strict = driver(jwks, required_scopes=["mcp", "admin"])
    error = await refusal(strict, sign(rsa_key))
    assert error.status == 403
    assert error.www_authenticate is not None
    assert error.www_authenticate.startswith(
        'Bearer error="insufficient_scope", error_description="insufficient scope", '
        'scope="mcp admin"')
    assert await strict.authenticate(bearer(sign(rsa_key, scope=None, scp=["mcp", "admin"])))

    no_claim = sign(rsa_key, vmcp_persona=None)
    assert (await refusal(driver(jwks), no_claim)).status == 403
    assert (await refusal(driver(jwks, personas={"x": "y"}), sign(rsa_key))).status == 403
    fallback = driver(jwks, default_persona="guest")
    assert (await fallback.authenticate(bearer(no_claim))).persona == "guest"


async def test_missing_token_is_a_bare_challenge(jwks: JwksServer) -> None:
    with pytest.raises(AuthError) as error:
        await driver(jwks).authenticate(HOST)
    assert error.value.status == 401
    assert error.value.www_authenticate == (
        'Bearer resource_metadata="https://gw.example/.well-known/oauth-protected-resource/mcp"')


async def test_unreachable_jwks_refuses(rsa_key: Any) -> None:
    auth = JwtAuth(resource=RESOURCE, jwks_url="http://127.0.0.1:9/jwks.json", jwks_timeout=2)
    assert "cannot be verified" in str(await refusal(auth, sign(rsa_key)))


@pytest.mark.parametrize(("settings", "message"), [
    ({"resource": RESOURCE}, "exactly one of jwks_url, key, key_file"),
    ({"resource": RESOURCE, "key": "k", "jwks_url": "https://a/j"}, "exactly one"),
    ({"key": "k"}, "needs audience"),
    ({"resource": RESOURCE, "jwks_url": "http://as.example/jwks"}, "https://"),
    ({"resource": RESOURCE, "key": "k", "algorithms": ["none"]}, "must not include 'none'"),
])
def test_settings_are_checked(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JwtAuth(**settings)


def test_registered_as_the_jwt_driver() -> None:
    assert load_driver("auth", "jwt") is JwtAuth
