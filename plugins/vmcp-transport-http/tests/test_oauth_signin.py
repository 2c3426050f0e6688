"""A caller's sign-in asked through its own client (URL-mode elicitation), with real parts.

The authorization server and the protected backend of ``test_oauth`` run as processes; the
gateway runs ``vmcp start -t http``. Front clients are SDK ``ClientSession`` s: one with an
elicitation callback (so it declares URL mode) acts as the person, following the URL it is
given with a real HTTP client through the authorization server's consent page to the
gateway's redirect; one without gets the command that signs in.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import mcp.types as types
import pytest
from http_harness import run_gateway
from mcp import Client, ClientSession
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from test_oauth import CALL_TIMEOUT, admin, call, config_for, personas_with_tokens, sign_in_as
from test_oauth import store_of as grants_of
from test_oauth import world as oauth_world

MODERN = "2026-07-28"

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]


@dataclass
class Person:
    """A front client declaring URL elicitation, and the person behind it: each sign-in URL
    it is asked to open is followed (with consent as ``user``), unless ``opens`` is False
    (the person never finishes) or ``answer`` is not ``accept``."""

    user: str
    opens: bool = True
    answer: str = "accept"
    asked: list[types.ElicitRequestURLParams] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    #: set when a completion notice arrives
    complete: asyncio.Event = field(default_factory=asyncio.Event)
    pages: list[str] = field(default_factory=list)
    _visits: list[asyncio.Task[None]] = field(default_factory=list)

    async def elicit(self, context: ClientRequestContext,
                     params: types.ElicitRequestParams) -> types.ElicitResult:
        """The client's elicitation callback: consent to open the URL, then open it."""
        assert isinstance(params, types.ElicitRequestURLParams), params
        self.asked.append(params)
        if self.opens and self.answer == "accept":
            self._visits.append(asyncio.get_running_loop().create_task(self.visit(params.url)))
        return types.ElicitResult(action=self.answer)  # type: ignore[arg-type]

    async def visit(self, url: str) -> None:
        """Act as the browser: the consent page, then the form, following every redirect to
        the gateway's callback."""
        async with httpx2.AsyncClient(timeout=CALL_TIMEOUT) as browser:
            page = await browser.get(url)
            assert page.status_code == 200, page.text
            done = await browser.post(url, data={"user": self.user}, follow_redirects=True)
            assert done.status_code == 200, done.text
            assert [r.status_code for r in done.history] == [302]
            self.pages.append(done.text)

    async def notes(self, message: Any) -> None:
        """The client's message handler: records the sign-ins said to be complete."""
        if isinstance(message, types.ElicitCompleteNotification):
            self.completed.append(message.params.elicitation_id)
            self.complete.set()

    async def visited(self) -> None:
        """Wait for the visits started so far."""
        for visit in self._visits:
            await visit


@asynccontextmanager
async def client(url: str, token: str, person: Person | None) -> AsyncIterator[ClientSession]:
    """An SDK client of the gateway's HTTP front; with ``person``, declaring elicitation."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=60)))
        read, write = await stack.enter_async_context(streamable_http_client(url, http_client=http))
        callbacks: dict[str, Any] = (
            {"elicitation_callback": person.elicit, "message_handler": person.notes}
            if person is not None else {})
        session = await stack.enter_async_context(ClientSession(read, write, **callbacks))
        with anyio.fail_after(CALL_TIMEOUT):
            await session.initialize()
        yield session


@dataclass
class World:
    """A running gateway in front of the protected backend."""

    #: the gateway's HTTP front
    url: str
    config: Path
    #: a front token per persona
    tokens: dict[str, str]
    #: the authorization server
    issuer: str


@asynccontextmanager
async def gateway_for(tmp_path: Path, *personas: str, signed_in: tuple[str, ...] = (),
                      **oauth: Any) -> AsyncIterator[World]:
    """The AS, the protected backend and a gateway mounting it as ``crm`` with per-persona
    grants; the service grant (which serves the lists) and those of ``signed_in`` are
    signed in beforehand."""
    async with oauth_world(tmp_path) as (issuer, url, _log):
        config = config_for(tmp_path, url, oauth)
        tokens = personas_with_tokens(config, *personas)
        await sign_in_as(config, None, "svc")
        for persona in signed_in:
            await sign_in_as(config, persona, persona)
        async with run_gateway(config, "http") as gateway:
            yield World(gateway.url, config, tokens, issuer)


@asynccontextmanager
async def modern_client(url: str, token: str, person: Person) -> AsyncIterator[Client]:
    """An SDK client speaking 2026-07-28 to the gateway, declaring elicitation."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=60)))
        yield await stack.enter_async_context(Client(
            streamable_http_client(url, http_client=http), mode=MODERN,
            elicitation_callback=person.elicit, cache=None))


def redirect_of(url: str) -> str:
    """The ``redirect_uri`` a sign-in URL sends the browser back to."""
    return parse_qs(urlsplit(url).query)["redirect_uri"][0]


async def test_a_call_signs_in_through_its_client_and_finishes(tmp_path: Path) -> None:
    async with gateway_for(tmp_path, "alice", "carol") as world:
        url, config, tokens = world.url, world.config, world.tokens
        alice = Person("alice")
        async with client(url, tokens["alice"], alice) as session:
            failed, who = await call(session, "whoami")
            assert not failed, who
            assert json.loads(who)["sub"] == "alice"  # the backend's data, alice's grant
            await alice.visited()
            assert len(alice.asked) == 1
            asked = alice.asked[0]
            assert asked.mode == "url" and "'crm'" in asked.message
            # the authorization request as vmcp auth login builds it
            query = parse_qs(urlsplit(asked.url).query)
            assert query["code_challenge_method"] == ["S256"] and query["state"][0]
            assert query["resource"][0].endswith("/mcp")
            # the browser comes back to the gateway's own HTTP front
            front = urlsplit(url)
            assert redirect_of(asked.url) == f"http://{front.netloc}/oauth/callback"
            assert alice.pages and "Signed in" in alice.pages[0]
            with anyio.fail_after(CALL_TIMEOUT):
                await alice.complete.wait()
            assert alice.completed == [asked.elicitation_id]
            grant = grants_of(config).load("crm", "alice")
            assert grant is not None and grant.resource == query["resource"][0]
            # the grant is kept: the next call needs no sign-in
            failed, _ = await call(session, "note", text="kept")
            assert not failed and len(alice.asked) == 1

        # a client without URL elicitation is told which command signs in
        async with client(url, tokens["carol"], None) as session:
            failed, message = await call(session, "whoami")
            assert failed
            assert "`vmcp auth login crm --persona carol`" in message, message
        assert grants_of(config).load("crm", "carol") is None


async def test_callers_see_only_their_own_sign_in(tmp_path: Path) -> None:
    async with gateway_for(tmp_path, "alice", "bob") as world:
        url, config, tokens = world.url, world.config, world.tokens
        alice, bob, alice_too = Person("alice"), Person("bob"), Person("alice")
        async with (client(url, tokens["alice"], alice) as as_alice,
                    client(url, tokens["bob"], bob) as as_bob,
                    client(url, tokens["alice"], alice_too) as as_alice_too):
            # three calls at once: alice's two sessions share one sign-in, bob has his own
            results = await asyncio.gather(call(as_alice, "whoami"), call(as_bob, "whoami"),
                                           call(as_alice_too, "whoami"))
            assert [json.loads(text)["sub"] for _, text in results] == ["alice", "bob", "alice"]
            await alice.visited()
            await bob.visited()
            await alice_too.visited()
            assert len(bob.asked) == 1
            # one of alice's sessions was asked, never both; bob's URL is his own
            assert len(alice.asked) + len(alice_too.asked) == 1
            alices = (alice.asked or alice_too.asked)[0]
            assert alices.url != bob.asked[0].url
            assert alices.elicitation_id != bob.asked[0].elicitation_id
            assert (parse_qs(urlsplit(alices.url).query)["state"]
                    != parse_qs(urlsplit(bob.asked[0].url).query)["state"])
            await as_alice.call_tool("crm__note", {"text": "alice's"})
            assert json.loads((await call(as_bob, "notes"))[1]) == []
        grants = grants_of(config)
        alice_grant, bob_grant = grants.load("crm", "alice"), grants.load("crm", "bob")
        assert alice_grant is not None and bob_grant is not None
        assert alice_grant.access_token != bob_grant.access_token


async def test_a_sign_in_never_finished_or_declined_fails_in_time(tmp_path: Path) -> None:
    async with gateway_for(tmp_path, "alice", "bob", sign_in_timeout=3) as world:
        url, config, tokens = world.url, world.config, world.tokens
        idle = Person("alice", opens=False)
        async with client(url, tokens["alice"], idle) as session:
            began = time.monotonic()
            failed, message = await call(session, "whoami")
            took = time.monotonic() - began
            assert failed and "not finished within 3 seconds" in message, message
            assert "vmcp auth login crm --persona alice" in message
            assert 3 <= took < 3 + 10, took
            # the gateway no longer takes that sign-in's authorization response
            state = parse_qs(urlsplit(idle.asked[0].url).query)["state"][0]
            async with httpx2.AsyncClient() as browser:
                late = await browser.get(redirect_of(idle.asked[0].url),
                                         params={"state": state, "code": "late"})
                assert late.status_code == 400, late.text
        declining = Person("bob", answer="decline")
        async with client(url, tokens["bob"], declining) as session:
            failed, message = await call(session, "whoami")
            assert failed and "declined" in message and "--persona bob" in message, message
        assert grants_of(config).load("crm", "alice") is None
        assert grants_of(config).load("crm", "bob") is None


async def test_a_refused_grant_leads_back_to_sign_in_through_the_client(tmp_path: Path) -> None:
    async with gateway_for(tmp_path, "alice", "bob", signed_in=("alice", "bob")) as world:
        alice, bob = Person("alice"), Person("bob")
        async with (client(world.url, world.tokens["alice"], alice) as as_alice,
                    client(world.url, world.tokens["bob"], bob) as as_bob):
            failed, _ = await call(as_bob, "whoami")
            assert not failed and not bob.asked
            await admin(world.issuer, "revoke?user=alice")
            await admin(world.issuer, "revoke?user=bob")
            # alice's connection is made now: its handshake finds the grant refused and
            # the refresh refused, so her client is asked and the call still finishes
            failed, who = await call(as_alice, "whoami")
            assert not failed and json.loads(who)["sub"] == "alice", who
            assert len(alice.asked) == 1
            # bob's connection was up: the backend refuses his call, the refresh is
            # refused, the connection ends, and the call is sent again over a new one
            # once bob has signed in through his client
            failed, who = await call(as_bob, "whoami")
            assert not failed and json.loads(who)["sub"] == "bob", who
            assert len(bob.asked) == 1
            failed, _ = await call(as_bob, "whoami")
            assert not failed and len(bob.asked) == 1
            await alice.visited()
            await bob.visited()


async def test_a_modern_client_signs_in_through_input_required(tmp_path: Path) -> None:
    """2026-07-28: the call is answered ``input_required`` asking for the URL; the client's
    retry (consent given) waits until the grant is stored, then gets the backend's data."""
    async with gateway_for(tmp_path, "alice") as world:
        alice = Person("alice")
        with anyio.fail_after(CALL_TIMEOUT):
            async with modern_client(world.url, world.tokens["alice"], alice) as session:
                result = await session.call_tool("crm__whoami", {})
        assert not result.is_error
        content = result.content[0]
        assert isinstance(content, types.TextContent)
        assert json.loads(content.text)["sub"] == "alice"
        await alice.visited()
        assert len(alice.asked) == 1 and alice.asked[0].mode == "url"
        assert grants_of(world.config).load("crm", "alice") is not None


async def test_a_preregistered_client_signs_in_on_a_loopback_listener(tmp_path: Path) -> None:
    """A pre-registered client's redirect URI is the loopback one it was registered with,
    not the gateway's front: a listener is started for the sign-in, and closed after it."""
    async with gateway_for(tmp_path, "alice", client_id="confidential",
                           client_secret="s3cret") as world:
        alice = Person("alice")
        async with client(world.url, world.tokens["alice"], alice) as session:
            failed, who = await call(session, "whoami")
            assert not failed and json.loads(who)["sub"] == "alice", who
            await alice.visited()
        redirect = urlsplit(redirect_of(alice.asked[0].url))
        assert redirect.hostname == "127.0.0.1" and redirect.path == "/callback"
        assert redirect.port != urlsplit(world.url).port
        async with httpx2.AsyncClient() as browser:
            with pytest.raises(httpx2.ConnectError):
                await browser.get(redirect.geturl())
        grant = grants_of(world.config).load("crm", "alice")
        assert grant is not None and grant.client.origin == "configured"
