"""A protected MCP backend for the OAuth tests: the SDK's Streamable HTTP server as an OAuth
resource server.

``python oauth_backend.py AS_URL LOG [--scope S]... [--sse]`` listens on a free loopback port
and prints ``PORT <n>``; it serves Streamable HTTP at ``/mcp``, or with ``--sse`` the legacy
HTTP+SSE transport at ``/sse``. It publishes RFC 9728 metadata naming ``AS_URL``, answers 401 with a
``resource_metadata`` challenge without a valid token, and checks every token at the
authorization server's introspection endpoint: active, issued for this server (its audience,
RFC 8707) and carrying the required scopes (default ``mcp:read``). Each ``Authorization``
header it receives is appended to ``LOG``, so that a test can tell which tokens reached it.

Tools: ``whoami()`` (the token's subject and scopes), ``note(text)`` / ``notes()`` (notes kept
per subject: each user sees only their own).
"""

from __future__ import annotations

import sys
from pathlib import Path

# First: a warm start when the test session offers one (tests/fixtures/servers/prefork.py).
sys.path.append(str(Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "servers"))
import prefork  # noqa: F401

# isort: split

import json
import socket
import warnings
from collections import defaultdict
from typing import Any

import anyio
import httpx2
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

_notes: dict[str, list[str]] = defaultdict(list)


class IntrospectingVerifier:
    """Checks a bearer token at the authorization server (RFC 7662 style)."""

    def __init__(self, issuer: str, resource: str) -> None:
        self.issuer = issuer
        self.resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's grant when it is active and issued for this server."""
        async with httpx2.AsyncClient() as http:
            response = await http.post(f"{self.issuer}/introspect", data={"token": token})
        data = response.json()
        if not data.get("active") or data.get("aud") != self.resource:
            return None
        return AccessToken(token=token, client_id=data["client_id"],
                           scopes=data.get("scope", "").split(), expires_at=data.get("exp"),
                           resource=data["aud"], subject=data["sub"])


def build(issuer: str, resource: str, scopes: list[str]) -> MCPServer:
    """The server, protecting ``resource``."""
    server = MCPServer(
        "oauth-backend", token_verifier=IntrospectingVerifier(issuer, resource),
        auth=AuthSettings(issuer_url=issuer, resource_server_url=resource,
                          required_scopes=scopes, validate_token_resource=True))

    def subject() -> str:
        token = get_access_token()
        assert token is not None  # the bearer middleware let the call through
        return token.subject or token.client_id

    @server.tool()
    def whoami() -> str:
        """Who the token was issued to, and its scopes."""
        token = get_access_token()
        assert token is not None
        return json.dumps({"sub": subject(), "scopes": token.scopes})

    @server.tool()
    def note(text: str) -> str:
        """Keep a note for the caller."""
        _notes[subject()].append(text)
        return "noted"

    @server.tool()
    def notes() -> str:
        """The caller's notes."""
        return json.dumps(_notes[subject()])

    return server


def logging_headers(app: Any, log: Path) -> Any:
    """``app``, appending each request's ``Authorization`` header to ``log`` first."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"authorization":
                    with log.open("a", encoding="utf-8") as fh:
                        fh.write(value.decode() + "\n")
        await app(scope, receive, send)

    return wrapped


async def serve(issuer: str, log: Path, scopes: list[str], sse: bool) -> None:
    """Serve until cancelled."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = build(issuer, f"http://127.0.0.1:{port}/{'sse' if sse else 'mcp'}", scopes)
    app = logging_headers(server.sse_app() if sse else server.streamable_http_app(), log)
    # h11: with httptools installed uvicorn would parse with it, which keeps a header
    # value's trailing whitespace, and the SDK compares such a value as it is
    config = uvicorn.Config(app, http="h11", log_level="warning", lifespan="on")
    print(f"PORT {port}", flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> None:
    """Read the command line and serve."""
    issuer, log = sys.argv[1], Path(sys.argv[2])
    scopes = [sys.argv[i + 1] for i, arg in enumerate(sys.argv) if arg == "--scope"]
    anyio.run(serve, issuer, log, scopes or ["mcp:read"], "--sse" in sys.argv)


if __name__ == "__main__":
    main()
