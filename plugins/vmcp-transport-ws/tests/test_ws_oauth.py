"""OAuth toward a WebSocket backend: the bearer goes on the upgrade request.

The authorization server is the HTTP transport's test server (``oauth_server.py``, authlib,
a process on a free port); the backend is a :class:`ws_harness.WebSocketBackend` that refuses
an upgrade without a token the server's introspection calls active, issued for this backend
(its audience) with the scope ``mcp:read``, and serves its RFC 9728 metadata over plain HTTP
on the same port. The gateway is a real ``vmcp start``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import anyio
import jwt
import mcp_types as types
import pytest
from vmcp_transport_http.oauth.discovery import discover, probe
from vmcp_transport_http.oauth.login import sign_in
from vmcp_transport_http.oauth.store import GrantStore
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response
from ws_harness import (
    CONNECT_TIMEOUT,
    EVENT_TIMEOUT,
    WebSocketBackend,
    run_gateway,
    write_config,
    ws_session,
)

from vmcp.auth.tokens import TokenStore
from vmcp.config import load_config
from vmcp.persona.store import PersonaStore
from vmcp.testing import serving_script

pytestmark = pytest.mark.anyio

AUTHORIZATION_SERVER = (Path(__file__).resolve().parents[2] / "vmcp-transport-http" / "tests"
                        / "oauth_server.py")


def authorization_server(*flags: str) -> AbstractAsyncContextManager[str]:
    """Run the test authorization server with ``flags``; yield its URL; end it."""
    return serving_script([sys.executable, str(AUTHORIZATION_SERVER), *flags],
                          CONNECT_TIMEOUT)


def list_changes() -> tuple[anyio.Event, Callable[[Any], Awaitable[None]]]:
    """An event set by the first tool list change, and the message handler that sets it."""
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    return changed, on_message


class ProtectedBackend(WebSocketBackend):
    """A WebSocket backend that is an OAuth resource server."""

    def __init__(self, issuer: str) -> None:
        super().__init__()
        self.issuer = issuer
        #: the ``Authorization`` header of every upgrade request, and which were refused
        self.bearers: list[str | None] = []
        self.refused: list[str | None] = []
        #: the subject of every token accepted
        self.subjects: list[str] = []

    @property
    def resource(self) -> str:
        """The resource it is (its URL with the WebSocket scheme's HTTP counterpart)."""
        return self.url.replace("ws://", "http://")

    @property
    def metadata_url(self) -> str:
        """Where its protected resource metadata is (plain HTTP on the WebSocket port)."""
        return self.resource.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")

    async def process_request(self, connection: ServerConnection,
                              request: Request) -> Response | None:
        """Serve the metadata; refuse an upgrade without a good token with 401."""
        if request.path.startswith("/.well-known/oauth-protected-resource"):
            response = connection.respond(HTTPStatus.OK, json.dumps({
                "resource": self.resource, "authorization_servers": [self.issuer],
                "scopes_supported": ["mcp:read"]}))
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
            return response
        bearer = request.headers.get("Authorization")
        self.bearers.append(bearer)
        if bearer is not None and await self._valid(bearer.removeprefix("Bearer ")):
            return None
        self.refused.append(bearer)
        response = connection.respond(HTTPStatus.UNAUTHORIZED, "sign in first\n")
        response.headers["WWW-Authenticate"] = (
            f'Bearer resource_metadata="{self.metadata_url}", scope="mcp:read"')
        return response

    async def _valid(self, token: str) -> bool:
        async with aiohttp.ClientSession() as http, http.post(
                f"{self.issuer}/introspect", data={"token": token}) as answer:
            data: dict[str, Any] = await answer.json()
        valid = bool(data.get("active") and data.get("aud") == self.resource
                     and "mcp:read" in data.get("scope", "").split())
        if valid:
            self.subjects.append(data["sub"])
        return valid


async def as_admin(issuer: str, path: str) -> Any:
    """One of the authorization server's test controls."""
    async with aiohttp.ClientSession() as http:
        method = http.get if path == "token-requests" else http.post
        async with method(f"{issuer}/admin/{path}") as answer:
            assert answer.status == 200
            return await answer.json()


async def consent(url: str, user: str) -> None:
    """Act as the person: consent as ``user`` and follow the redirect to the receiver."""
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data={"user": user}, allow_redirects=False) as answer:
            assert answer.status == 302, await answer.text()
            callback = answer.headers["Location"]
        async with http.get(callback) as done:
            assert done.status == 200


async def test_discovery_starts_from_the_upgrade_challenge() -> None:
    async with authorization_server() as issuer:
        backend = ProtectedBackend(issuer)
        async with backend.running(), aiohttp.ClientSession() as http:
            challenge = await probe(http, backend.url)
            assert challenge is not None
            assert challenge.resource_metadata == backend.metadata_url
            target = await discover(http, backend.url, challenge)
        assert target.resource == backend.resource
        assert target.issuer == issuer and target.scope == "mcp:read"
        assert backend.refused == [None]


async def test_bearer_on_the_upgrade_renewed_on_401_at_reconnect(tmp_path: Path) -> None:
    changed, on_message = list_changes()
    async with authorization_server() as issuer:
        backend = ProtectedBackend(issuer)
        async with backend.running():
            config = write_config(tmp_path / "vmcp.toml", {
                "transports.ws": {"port": 0},
                "servers.remote": {"transport": "ws", "url": backend.url},
                "servers.remote.oauth": {"grant": "client_credentials", "grants": "shared",
                                         "client_id": "machine", "client_secret": "m4chine"},
            })
            async with (run_gateway(config, "ws", log=tmp_path / "gateway.log",
                                    env={"VMCP_HOME": str(tmp_path / "home")}) as gateway,
                        ws_session(await gateway.url(), message_handler=on_message)
                        as (session, _)):
                with anyio.fail_after(EVENT_TIMEOUT):
                    result = await session.call_tool("remote__echo", {"text": "hi"})
                assert [b.text for b in result.content if isinstance(b, types.TextContent)
                        ] == ["hi"]
                [first] = backend.bearers
                assert first is not None and backend.refused == []

                # the token dies at the server while the socket is open, then the socket
                # drops: the reconnect's upgrade is refused with 401, a new grant is
                # obtained and the upgrade sent once more with it
                await as_admin(issuer, "expire")
                backend.drop()
                await backend.wait_connections(2)
                with anyio.fail_after(EVENT_TIMEOUT):
                    await changed.wait()
                    result = await session.call_tool("remote__echo", {"text": "back"})
                assert [b.text for b in result.content if isinstance(b, types.TextContent)
                        ] == ["back"]
        assert backend.refused == [first]
        assert backend.bearers[:2] == [first, first] and backend.bearers[2] != first
        assert await as_admin(issuer, "token-requests") == ["client_credentials"] * 2


async def test_sign_in_to_a_ws_backend_and_refresh_at_reconnect(tmp_path: Path) -> None:
    changed, on_message = list_changes()
    async with authorization_server() as issuer:
        backend = ProtectedBackend(issuer)
        async with backend.running():
            config = write_config(tmp_path / "vmcp.toml", {
                "transports.ws": {"port": 0},
                "servers.remote": {"transport": "ws", "url": backend.url},
                "servers.remote.oauth": {"grants": "shared"},  # dynamic registration
            })
            store = GrantStore(tmp_path / "home" / "secrets")
            consents: list[asyncio.Task[None]] = []

            def show(url: str) -> None:
                consents.append(asyncio.get_running_loop().create_task(consent(url, "svc")))

            # `vmcp auth login remote`, in process: the challenge comes from the upgrade
            with anyio.fail_after(CONNECT_TIMEOUT):
                grant = await sign_in(load_config(config)[0].servers["remote"], None, store,
                                      show, None, CONNECT_TIMEOUT)
                await asyncio.gather(*consents)
            assert grant.resource == backend.resource and grant.refresh_token is not None
            async with (run_gateway(config, "ws", log=tmp_path / "gateway.log") as gateway,
                        ws_session(await gateway.url(), message_handler=on_message)
                        as (session, _)):
                with anyio.fail_after(EVENT_TIMEOUT):
                    await session.call_tool("remote__echo", {"text": "hi"})
                assert backend.bearers == [None, f"Bearer {grant.access_token}"]
                await as_admin(issuer, "expire")
                backend.drop()
                await backend.wait_connections(2)
                with anyio.fail_after(EVENT_TIMEOUT):
                    await changed.wait()
                    result = await session.call_tool("remote__echo", {"text": "back"})
                assert [b.text for b in result.content if isinstance(b, types.TextContent)
                        ] == ["back"]
        renewed = store.load("remote", None)
        assert renewed is not None and renewed.access_token != grant.access_token
        assert backend.bearers[2:] == [f"Bearer {grant.access_token}",
                                       f"Bearer {renewed.access_token}"]
        assert await as_admin(issuer, "token-requests") == ["authorization_code",
                                                             "refresh_token"]


async def test_each_jwt_caller_connects_with_its_exchanged_token(tmp_path: Path) -> None:
    key, front_audience = secrets.token_hex(32), "http://127.0.0.1/vmcp"

    def caller_jwt(subject: str) -> str:
        return jwt.encode({"sub": subject, "aud": front_audience,
                           "exp": int(time.time()) + 600}, key, "HS256")

    async with authorization_server("--subject-key", key,
                                    "--subject-audience", front_audience) as issuer:
        backend = ProtectedBackend(issuer)
        async with backend.running():
            config = write_config(tmp_path / "vmcp.toml", {
                "transports.ws": {"port": 0},
                "auth": {"driver": "jwt", "key": key, "algorithms": ["HS256"],
                         "audience": front_audience, "default_persona": "users"},
                "servers.remote": {"transport": "ws", "url": backend.url,
                                   "isolation": "session"},
                "servers.remote.oauth": {"grant": "token_exchange", "client_id": "exchanger",
                                         "client_secret": "x-secret"},
            })
            personas = PersonaStore(tmp_path / "home" / "config" / "personas")
            personas.create("users")
            personas.update("users", lambda persona: persona.enable("remote"))
            tokens = {name: caller_jwt(name) for name in ("alice", "bob")}
            async with run_gateway(config, "ws", log=tmp_path / "gateway.log") as gateway:
                url = await gateway.url()
                for name, token in tokens.items():
                    async with ws_session(url, headers={"Authorization": f"Bearer {token}"}
                                          ) as (session, _):
                        with anyio.fail_after(EVENT_TIMEOUT):
                            result = await session.call_tool("remote__echo", {"text": name})
                        assert [b.text for b in result.content
                                if isinstance(b, types.TextContent)] == [name]
        # the lists' connection is the exchanging client's own; each caller's connection
        # carries a token issued for that caller; no caller's JWT reached the backend
        assert backend.subjects == ["exchanger", "alice", "bob"]
        assert all(bearer is not None and bearer.removeprefix("Bearer ") not in tokens.values()
                   for bearer in backend.bearers)


async def test_a_ws_caller_signs_in_through_its_client(tmp_path: Path) -> None:
    """A persona with no grant to a ws mount is asked, through its own client (URL-mode
    elicitation), to sign in; with no HTTP front the browser comes back to a loopback
    listener the gateway starts for that sign-in; then the call is served."""
    async with authorization_server() as issuer:
        backend = ProtectedBackend(issuer)
        async with backend.running():
            config = write_config(tmp_path / "vmcp.toml", {
                "transports.ws": {"port": 0},
                "auth": {"driver": "token"},
                "servers.remote": {"transport": "ws", "url": backend.url,
                                   "isolation": "persona"},
                "servers.remote.oauth": {},  # a grant per persona, dynamic registration
            })
            home = tmp_path / "home"
            personas = PersonaStore(home / "config" / "personas")
            persona = personas.create("alice")
            persona.enable("remote")
            personas.save(persona)
            _, token = TokenStore(home / "config" / "tokens.json").create(
                "alice", timedelta(hours=1))
            store = GrantStore(home / "secrets")
            visits: list[asyncio.Task[None]] = []

            def show(url: str) -> None:
                visits.append(asyncio.get_running_loop().create_task(consent(url, "svc")))

            with anyio.fail_after(CONNECT_TIMEOUT):  # the service grant serves the lists
                await sign_in(load_config(config)[0].servers["remote"], None, store, show,
                              None, CONNECT_TIMEOUT)
                await asyncio.gather(*visits)
            asked: list[str] = []

            async def elicit(context: Any, params: Any) -> types.ElicitResult:
                asked.append(params.url)
                visits.append(asyncio.get_running_loop().create_task(
                    consent(params.url, "alice")))
                return types.ElicitResult(action="accept")

            async with (run_gateway(config, "ws", log=tmp_path / "gateway.log",
                                    env={"VMCP_HOME": str(home)}) as gateway,
                        ws_session(await gateway.url(),
                                   headers={"Authorization": f"Bearer {token}"},
                                   elicitation_callback=elicit) as (session, _)):
                with anyio.fail_after(EVENT_TIMEOUT):
                    result = await session.call_tool("remote__echo", {"text": "hi"})
                    await asyncio.gather(*visits)
                assert [b.text for b in result.content if isinstance(b, types.TextContent)
                        ] == ["hi"]
        [url] = asked
        assert urlsplit(parse_qs(urlsplit(url).query)["redirect_uri"][0]).hostname == "127.0.0.1"
        grant = store.load("remote", "alice")
        assert grant is not None and grant.resource == backend.resource
        assert backend.subjects == ["svc", "alice"]
