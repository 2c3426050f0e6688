"""A real OAuth 2.1 authorization server for the OAuth tests, built on authlib's Flask server.

``python oauth_server.py [--expires-in N] [--iss] [--key-client PEM] [--subject-key SECRET
--subject-audience AUD] [--no-exchange]`` listens on a free loopback port and prints
``PORT <n>`` once it does. It offers RFC 8414 metadata, the
authorization code grant (PKCE S256 demanded on every authorization request, the ``resource``
indicator bound to the code and the token), refresh tokens (rotated), client credentials, RFC
7591 dynamic registration, RFC 7009 revocation and an RFC 7662-style introspection endpoint for
the protected backend. With ``--iss`` authorization responses carry RFC 9207 ``iss``.

A client id that is an URL is a client ID metadata document: the server fetches it, and its
own ``/cimd`` serves one (public client, loopback redirect).

Consent is a form: ``GET /authorize?...`` shows it, ``POST`` of the same URL with
``user=<name>`` signs that user in and consents (``deny=1`` refuses). Two test controls:
``POST /admin/expire`` ends every access token at once, ``POST /admin/revoke?user=U`` revokes
every token of a user. Pre-registered: ``confidential`` (secret ``s3cret``, basic or post) and
``machine`` (secret ``m4chine``, client credentials) and, with ``--key-client``, ``keyed``
(client credentials, authenticated by ``private_key_jwt`` with the RSA public key in PEM).

RFC 8693 token exchange (listed in the metadata unless ``--no-exchange``): the client
``exchanger`` (secret ``x-secret``, also client credentials) presents a caller's JWT as the
``subject_token``; it is verified as the gateway's front verifies it (HS256 with
``--subject-key``, audience ``--subject-audience``), and the token issued is the JWT
subject's, bound to the ``resource`` asked for. ``GET /admin/exchanges`` lists each exchange
answered (subject, resource, audience, subject token type).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # loopback http only

import jwt
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

SCOPES = ["mcp:read", "mcp:admin"]
_lock = threading.Lock()


@dataclass
class Client(ClientMixin):
    """A registered client."""

    client_id: str
    client_secret: str | None
    redirect_uris: list[str]
    auth_methods: tuple[str, ...]
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    #: the PEM public key of a ``private_key_jwt`` client
    public_key: str | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # RFC 8252 §7.3: a loopback redirect may use any port
        if redirect_uri in self.redirect_uris:
            return True
        return any(_without_port(redirect_uri) == _without_port(uri)
                   for uri in self.redirect_uris if uri.startswith("http://127.0.0.1"))

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and secrets.compare_digest(
            client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


def _without_port(uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    host, _, path = rest.partition("/")
    return f"{scheme}://{host.split(':')[0]}/{path}"


@dataclass
class Code:
    """An authorization code."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    resource: str | None
    code_challenge: str
    code_challenge_method: str

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class Token:
    """An issued access token with its refresh token."""

    access_token: str
    refresh_token: str | None
    client_id: str
    user: str | None
    scope: str
    resource: str | None
    expires_at: float
    revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int(self.expires_at - time.time())

    def is_revoked(self) -> bool:
        return self.revoked

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at


@dataclass
class State:
    """Everything the server knows."""

    clients: dict[str, Client] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)
    tokens: list[Token] = field(default_factory=list)
    #: grant types of every token request answered, in order (for the tests to inspect)
    token_requests: list[str] = field(default_factory=list)
    #: every token exchange answered: subject, resource, audience, subject token type
    exchanges: list[dict[str, Any]] = field(default_factory=list)


state = State()
state.clients["confidential"] = Client(
    "confidential", "s3cret", ["http://127.0.0.1/callback"],
    ("client_secret_basic", "client_secret_post"))
state.clients["machine"] = Client(
    "machine", "m4chine", [], ("client_secret_basic", "client_secret_post"),
    ("client_credentials",))

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
TOKEN_TYPES = ("urn:ietf:params:oauth:token-type:access_token",
               "urn:ietf:params:oauth:token-type:jwt")
state.clients["exchanger"] = Client(
    "exchanger", "x-secret", [], ("client_secret_basic", "client_secret_post"),
    ("client_credentials", TOKEN_EXCHANGE))


def query_client(client_id: str) -> Client | None:
    """A registered client, or the client a metadata document URL describes."""
    if client_id in state.clients:
        return state.clients[client_id]
    if not client_id.startswith("http://127.0.0.1:"):
        return None
    with urllib.request.urlopen(client_id, timeout=10) as answer:  # loopback only, above
        document = json.load(answer)
    if document.get("client_id") != client_id:
        return None
    return Client(client_id, None, list(document["redirect_uris"]), ("none",))


def _resource() -> str | None:
    return request.form.get("resource") or request.args.get("resource")


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def save_authorization_code(self, code: str, req: Any) -> None:
        data = req.payload.data
        if data.get("code_challenge_method") != "S256" or not data.get("code_challenge"):
            raise InvalidRequestError("PKCE with S256 is required")
        with _lock:
            state.codes[code] = Code(code, req.client.client_id, data.get("redirect_uri"),
                                     req.payload.scope or "", req.user, data.get("resource"),
                                     data["code_challenge"], "S256")

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        found = state.codes.get(code)
        if found is None or found.client_id != client.client_id:
            return None
        if found.resource != _resource():
            raise InvalidRequestError("resource differs from the authorization request")
        return found

    def delete_authorization_code(self, authorization_code: Code) -> None:
        state.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> str:
        return authorization_code.user


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        for token in state.tokens:
            if token.refresh_token == refresh_token and not token.revoked:
                return token
        return None

    def authenticate_user(self, refresh_token: Token) -> str | None:
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: Token) -> None:
        refresh_token.revoked = True


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post",
                                   "private_key_jwt"]


class TokenExchangeGrant(grants.BaseGrant, grants.TokenEndpointMixin):
    """RFC 8693: a token for the subject of a JWT the client presents, for one resource."""

    GRANT_TYPE = TOKEN_EXCHANGE
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("the client may not exchange tokens")
        data = self.request.payload.data
        if data.get("subject_token_type") not in TOKEN_TYPES:
            raise InvalidRequestError("unsupported subject_token_type")
        if not _resource():
            raise InvalidRequestError("resource is required")
        try:
            claims = jwt.decode(data.get("subject_token", ""), app.config["SUBJECT_KEY"],
                                algorithms=["HS256"], audience=app.config["SUBJECT_AUDIENCE"],
                                options={"require": ["exp", "aud", "sub"]})
        except jwt.ExpiredSignatureError as exc:
            raise InvalidGrantError("the subject token has expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidGrantError(f"the subject token is invalid: {exc}") from exc
        self.request.client = client
        self.request.user = str(claims["sub"])
        self.validate_requested_scope()

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.generate_token(user=self.request.user, scope=self.request.payload.scope,
                                    include_refresh_token=False)
        token["issued_token_type"] = TOKEN_TYPES[0]
        data = self.request.payload.data
        with _lock:
            state.exchanges.append({"subject": self.request.user, "resource": _resource(),
                                    "audience": data.get("audience"),
                                    "subject_token_type": data.get("subject_token_type")})
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class KeyAssertion(JWTBearerClientAssertion):
    """``private_key_jwt`` (RFC 7523 §2.2): the assertion is signed with the client's key."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self) -> list[str]:
        return [f"{issuer()}/token", issuer()]

    def validate_jti(self, claims: Any, jti: str) -> bool:
        with _lock:
            fresh = jti not in seen_jti
            seen_jti.add(jti)
        return fresh

    def resolve_client_public_key(self, client: Client) -> str | None:
        return client.public_key


seen_jti: set[str] = set()


class Registration(ClientRegistrationEndpoint):
    def authenticate_token(self, req: Any) -> bool:
        return True  # open registration

    def resolve_public_key(self, req: Any) -> None:
        return None

    def get_server_metadata(self) -> dict[str, Any]:
        return metadata()

    def save_client(self, client_info: dict[str, Any], client_metadata: dict[str, Any],
                    req: Any) -> Client:
        method = client_metadata.get("token_endpoint_auth_method", "client_secret_basic")
        client = Client(client_info["client_id"],
                        client_info.get("client_secret") if method != "none" else None,
                        list(client_metadata.get("redirect_uris") or []), (method,))
        with _lock:
            state.clients[client.client_id] = client
        return client


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        for token in state.tokens:
            if token_string in (token.access_token, token.refresh_token):
                return token
        return None

    def revoke_token(self, token: Token, req: Any) -> None:
        token.revoked = True


class Issuer(IssuerParameter):
    def get_issuer(self) -> str:
        return issuer()


app = Flask(__name__)


def issuer() -> str:
    return f"http://127.0.0.1:{app.config['PORT']}"


def save_token(token: dict[str, Any], req: Any) -> None:
    credential = req.authorization_code or req.refresh_token
    resource = _resource() or getattr(credential, "resource", None)
    user = req.user if isinstance(req.user, str) else None
    with _lock:
        state.tokens.append(Token(token["access_token"], token.get("refresh_token"),
                                  req.client.client_id, user, token.get("scope", ""), resource,
                                  time.time() + token["expires_in"]))
        state.token_requests.append(req.payload.grant_type)


server = AuthorizationServer(query_client=query_client, save_token=save_token)


def metadata() -> dict[str, Any]:
    base = issuer()
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "registration_endpoint": f"{base}/register",
        "revocation_endpoint": f"{base}/revoke",
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                                  *([] if app.config["NO_EXCHANGE"] else [TOKEN_EXCHANGE])],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                  "none", "private_key_jwt"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": app.config["ISS"],
        "client_id_metadata_document_supported": True,
    }


@app.get("/.well-known/oauth-authorization-server")
def well_known() -> Any:
    return jsonify(metadata())


@app.get("/cimd")
def client_document() -> Any:
    return jsonify({"client_id": f"{issuer()}/cimd", "client_name": "vmcp",
                    "redirect_uris": ["http://127.0.0.1/callback"],
                    "grant_types": ["authorization_code", "refresh_token"],
                    "token_endpoint_auth_method": "none"})


@app.route("/authorize", methods=["GET", "POST"])
def authorize() -> Any:
    if request.method == "GET":
        grant = server.get_consent_grant(end_user=None)
        return (f"<form method=post><p>{grant.client.client_id} asks for "
                f"{grant.request.payload.scope}</p><input name=user><button>Allow</button>"
                "</form>")
    if request.form.get("deny"):
        return server.create_authorization_response(grant_user=None)
    return server.create_authorization_response(grant_user=request.form["user"])


@app.post("/token")
def issue_token() -> Any:
    return server.create_token_response()


@app.post("/register")
def register() -> Any:
    return server.create_endpoint_response("client_registration")


@app.post("/revoke")
def revoke() -> Any:
    return server.create_endpoint_response("revocation")


@app.post("/introspect")
def introspect() -> Any:
    value = request.form.get("token", "")
    for token in state.tokens:
        if token.access_token == value and not token.revoked and not token.is_expired():
            return jsonify({"active": True, "sub": token.user or token.client_id,
                            "client_id": token.client_id, "scope": token.scope,
                            "aud": token.resource, "exp": int(token.expires_at)})
    return jsonify({"active": False})


@app.post("/admin/expire")
def expire_all() -> Any:
    with _lock:
        for token in state.tokens:
            token.expires_at = min(token.expires_at, time.time())
    return jsonify({"ok": True})


@app.post("/admin/revoke")
def revoke_user() -> Any:
    user = request.args["user"]
    with _lock:
        for token in state.tokens:
            if token.user == user:
                token.revoked = True
    return jsonify({"ok": True})


@app.get("/admin/token-requests")
def token_requests() -> Any:
    return jsonify(state.token_requests)


@app.get("/admin/exchanges")
def exchanges() -> Any:
    return jsonify(state.exchanges)


def _flag(name: str) -> str | None:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else None


def main() -> None:
    """Serve on a free loopback port until terminated."""
    expires_in = (int(sys.argv[sys.argv.index("--expires-in") + 1])
                  if "--expires-in" in sys.argv else 3600)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    app.config.update(PORT=http.server_port, ISS="--iss" in sys.argv,
                      NO_EXCHANGE="--no-exchange" in sys.argv,
                      SUBJECT_KEY=_flag("--subject-key"),
                      SUBJECT_AUDIENCE=_flag("--subject-audience"),
                      OAUTH2_REFRESH_TOKEN_GENERATOR=True,
                      OAUTH2_TOKEN_EXPIRES_IN={"authorization_code": expires_in,
                                               "refresh_token": expires_in,
                                               "client_credentials": expires_in,
                                               TOKEN_EXCHANGE: expires_in})
    server.init_app(app)
    server.register_grant(AuthorizationCodeGrant, [CodeChallenge(required=True)])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    if not app.config["NO_EXCHANGE"]:
        server.register_grant(TokenExchangeGrant)
    server.register_endpoint(Registration)
    server.register_endpoint(Revocation)
    server.register_client_auth_method(KeyAssertion.CLIENT_AUTH_METHOD, KeyAssertion())
    if "--key-client" in sys.argv:
        pem = Path(sys.argv[sys.argv.index("--key-client") + 1]).read_text(encoding="utf-8")
        state.clients["keyed"] = Client("keyed", None, [], ("private_key_jwt",),
                                        ("client_credentials",), pem)
    if app.config["ISS"]:
        server.register_extension(Issuer())
    print(f"PORT {http.server_port}", flush=True)
    http.serve_forever()


if __name__ == "__main__":
    main()
