"""Approvals bound to the exact call: ``confirm-tool`` asks the caller with a form elicitation."""

from __future__ import annotations

import json
from pathlib import Path

import mcp.types as types
import pytest
from gateway_harness import ALPHA, BETA, FIXTURE_SERVERS, backend, texts, write_config
from mcp.client.session import ClientRequestContext
from test_personas import PersonaGateway, make_personas

from vmcp.gateway.approvals import call_digest
from vmcp.persona import PersonaStore

pytestmark = pytest.mark.anyio


def coder_gateway(tmp_path: Path) -> PersonaGateway:
    """The coder persona (alpha's echo, add, t*) with every call of ``echo`` to be confirmed."""
    home = tmp_path / "home"
    store = make_personas(home)
    coder = store.load("coder")
    coder.add_rule("alpha", "confirm_tools", "ech?")
    store.save(coder)
    config = write_config(tmp_path / "config" / "vmcp.toml",
                          {"alpha": backend(ALPHA), "beta": backend(BETA)})
    return PersonaGateway(home=home, config=config, log=tmp_path / "gateway.log",
                          persona="coder")


async def test_confirmed_calls_run_only_when_approved_with_those_arguments(
    tmp_path: Path,
) -> None:
    asked: list[types.ElicitRequestFormParams] = []
    answers = ["accept", "decline"]

    async def elicitation(context: ClientRequestContext,
                          params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams)
        asked.append(params)
        action = answers.pop(0)
        return types.ElicitResult(action=action,  # type: ignore[arg-type]
                                  content={"approve": True} if action == "accept" else None)

    gateway = coder_gateway(tmp_path)
    async with gateway.connect(elicitation_callback=elicitation) as session:
        approved = await session.call_tool("alpha__echo", {"text": "rm -rf /tmp/x"})
        assert texts(approved) == ["alpha: rm -rf /tmp/x"]
        assert "alpha__echo" in asked[0].message and '"text": "rm -rf /tmp/x"' in asked[0].message
        digest = call_digest("alpha__echo", {"text": "rm -rf /tmp/x"})
        assert f"(call {digest})" in asked[0].message

        # Other arguments are another call: asked again, and this time declined.
        declined = await session.call_tool("alpha__echo", {"text": "something else"})
        assert declined.is_error and "did not approve it (decline)" in texts(declined)[0]
        assert len(asked) == 2 and "something else" in asked[1].message

        # Tools without a rule are not asked about.
        assert json.loads(texts(await session.call_tool("alpha__add", {"a": 1, "b": 2}))[0]) \
            == {"sum": 3}
        assert len(asked) == 2
    log = gateway.log_text()
    assert f"call {digest} of alpha__echo" in log and "approved by the caller" in log
    other = call_digest("alpha__echo", {"text": "something else"})
    assert f"call {other} of alpha__echo" in log and "did not approve it" in log


async def test_a_client_without_elicitation_is_refused(tmp_path: Path) -> None:
    async with coder_gateway(tmp_path).connect() as session:
        refused = await session.call_tool("alpha__echo", {"text": "hi"})
        assert refused.is_error
        assert "does not support form elicitation" in texts(refused)[0]



async def test_confirm_destructive_asks_about_the_tools_that_may_be_destructive(
    tmp_path: Path,
) -> None:
    """gamma's ``lookup`` is annotated read-only, ``store`` not, ``listed`` and ``purge`` not
    at all. On the trusted mount an override marks ``purge`` not destructive; on the
    untrusted one no annotation is believed. Both list ``listed`` in ``read_only_tools``. A
    third mount forwards the tool gamma lists nowhere, which so may be destructive."""
    home = tmp_path / "home"
    store = PersonaStore(home / "config" / "personas")
    ops = store.create("ops")
    ops.enable("trusted")
    ops.enable("plain")
    ops.enable("forwarding")
    ops.confirm_destructive = True
    store.save(ops)
    gamma = FIXTURE_SERVERS / "gamma.py"
    config = write_config(tmp_path / "config" / "vmcp.toml", {
        "trusted": backend(gamma, trusted=True, read_only_tools=["listed"],
                           tools={"purge": {"annotations": {"destructiveHint": False}}}),
        "plain": backend(gamma, read_only_tools=["listed"]),
        "forwarding": backend(gamma, trusted=True, unlisted_tools="forward"),
    })
    asked: list[str] = []

    async def elicitation(context: ClientRequestContext,
                          params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams)
        asked.append(params.message.split("tool ", 1)[1].split("?", 1)[0])
        return types.ElicitResult(action="accept", content={"approve": True})

    gateway = PersonaGateway(home=home, config=config, log=tmp_path / "gateway.log",
                             persona="ops")
    async with gateway.connect(elicitation_callback=elicitation) as session:
        for mount in ("trusted", "plain"):
            for tool in ("lookup", "store", "listed", "purge"):
                result = await session.call_tool(f"{mount}__{tool}", {})
                assert texts(result) == [f"gamma {tool}"]
        # a tool the mount does not list has no annotations to believe
        assert texts(await session.call_tool("forwarding__lookup", {})) == ["gamma lookup"]
        assert texts(await session.call_tool("forwarding__unlisted", {})) == ["gamma unlisted"]
    assert asked == ["trusted__store", "plain__lookup", "plain__store", "plain__purge",
                     "forwarding__unlisted"]
