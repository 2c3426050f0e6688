"""The audit trail: calls made with the SDK client through a real gateway (``[audit]
enabled``, a persona by default) land as one JSON line each, read back with ``vmcp audit``.

No trail is written with ``[audit]`` off, and the CLI's filters and ``--follow`` work on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import anyio
import mcp.types as types
import pytest
from gateway_harness import ALPHA, BETA, EVENT_TIMEOUT, Gateway, backend, texts
from mcp.client.session import ClientRequestContext

from vmcp.persona import PersonaStore

pytestmark = pytest.mark.anyio


def _vmcp(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *gateway.command_args(*args)],
                          env={**os.environ, **gateway.env()}, capture_output=True, text=True,
                          timeout=60, check=False)


def _json(gateway: Gateway, *args: str) -> Any:
    result = _vmcp(gateway, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _audited(make_gateway: Callable[..., Gateway], enabled: bool,
             confirm: str | None = None) -> Gateway:
    gateway = make_gateway({"alpha": backend(ALPHA), "beta": backend(BETA)},
                           {"default_persona": "coder"})
    personas = PersonaStore(gateway.home / "config" / "personas")
    coder = personas.create("coder")
    coder.enable("alpha")
    coder.enable("beta")
    if confirm is not None:
        coder.add_rule("alpha", "confirm_tools", confirm)
    personas.save(coder)
    assert gateway.config is not None
    with gateway.config.open("a", encoding="utf-8") as fh:
        fh.write(f"\n[audit]\nenabled = {'true' if enabled else 'false'}\n")
    return gateway


async def test_every_routed_call_is_one_audit_line(make_gateway: Callable[..., Gateway]) -> None:
    gateway = _audited(make_gateway, enabled=True)
    async with gateway.connect() as session:
        assert texts(await session.call_tool("alpha__echo", {"text": "hi"})) == ["alpha: hi"]
        assert (await session.call_tool("alpha__fail", {})).is_error
        await session.call_tool("beta__echo", {"text": "there"})
    trail = gateway.home / "logs" / "audit.jsonl"
    lines = trail.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    first = json.loads(lines[0])
    assert first.keys() == {"time", "caller", "persona", "session", "request_id", "mount",
                            "method", "tool", "target", "arguments", "outcome", "latency_ms",
                            "approval", "replica"}
    assert first["persona"] == "coder" and first["caller"] == "local"
    assert (first["mount"], first["method"], first["tool"]) == ("alpha", "tools/call", "echo")
    assert first["arguments"] == "sha256:" + hashlib.sha256(b'{"text":"hi"}').hexdigest()
    assert "hi" not in lines[0]  # the arguments themselves never are
    assert first["outcome"] == "ok" and first["latency_ms"] > 0
    assert [json.loads(line)["outcome"] for line in lines] == ["ok", "tool_error", "ok"]
    assert len({json.loads(line)["session"] for line in lines}) == 1
    records = [json.loads(line) for line in lines]
    # the SDK client's own ids, each call its own (it lists tools in between, too)
    ids = [r["request_id"] for r in records]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(set(ids))
    assert [r["replica"] for r in records] == ["alpha-0", "alpha-0", "beta-0"]
    assert {r["approval"] for r in records} == {None}  # no call needed one

    tail = _json(gateway, "audit", "tail", "-n", "2")
    assert [(r["mount"], r["tool"]) for r in tail] == [("alpha", "fail"), ("beta", "echo")]
    assert [r["mount"] for r in _json(gateway, "audit", "query", "--tool", "echo")] == [
        "alpha", "beta"]
    assert [r["tool"] for r in _json(gateway, "audit", "query", "--mount", "alpha",
                                     "--persona", "coder", "--since", "1h")] == ["echo", "fail"]
    assert _json(gateway, "audit", "query", "--persona", "support") == []
    assert _json(gateway, "audit", "query", "--since", "2999-01-01T00:00:00") == []
    bad = _vmcp(gateway, "audit", "query", "--since", "yesterday")
    assert bad.returncode == 2 and "neither a duration" in bad.stderr


async def test_approval_decisions_are_audited(make_gateway: Callable[..., Gateway]) -> None:
    """A call the persona makes wait for the caller: approved, it is audited with that
    decision; declined, it never reaches the backend and is audited as declined."""
    gateway = _audited(make_gateway, enabled=True, confirm="echo")
    answers = ["accept", "decline"]

    async def elicitation(context: ClientRequestContext,
                          params: types.ElicitRequestParams) -> types.ElicitResult:
        action = answers.pop(0)
        return types.ElicitResult(action=action,  # type: ignore[arg-type]
                                  content={"approve": True} if action == "accept" else None)

    async with gateway.connect(elicitation_callback=elicitation) as session:
        assert texts(await session.call_tool("alpha__echo", {"text": "yes"})) == ["alpha: yes"]
        declined = await session.call_tool("alpha__echo", {"text": "no"})
        assert declined.is_error and "did not approve it" in texts(declined)[0]
        await session.call_tool("alpha__add", {"a": 1, "b": 2})
    records = [json.loads(line) for line in
               (gateway.home / "logs" / "audit.jsonl").read_text().splitlines()]
    assert [(r["tool"], r["approval"], r["outcome"]) for r in records] == [
        ("echo", "approved", "ok"), ("echo", "declined", "tool_error"), ("add", None, "ok")]
    assert records[0]["replica"] == "alpha-0"
    assert records[1]["replica"] is None  # the backend never saw it
    assert records[1]["arguments"] == "sha256:" + hashlib.sha256(b'{"text":"no"}').hexdigest()
    ids = [r["request_id"] for r in records]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(set(ids))


async def test_follow_prints_new_calls(make_gateway: Callable[..., Gateway]) -> None:
    gateway = _audited(make_gateway, enabled=True)
    async with gateway.connect() as session:
        await session.call_tool("alpha__echo", {"text": "one"})
        follower = await anyio.open_process(
            [sys.executable, *gateway.command_args("audit", "tail", "-n", "1", "--follow",
                                                   "--json")],
            env={**os.environ, **gateway.env()}, stdin=subprocess.DEVNULL)
        try:
            assert follower.stdout is not None
            received = b""

            async def next_record() -> dict[str, Any]:
                nonlocal received
                with anyio.fail_after(EVENT_TIMEOUT * 2):
                    while b"\n" not in received:
                        received += await follower.stdout.receive()  # type: ignore[union-attr]
                line, _, received = received.partition(b"\n")
                return json.loads(line)

            assert (await next_record())["arguments"] == "sha256:" + hashlib.sha256(
                b'{"text":"one"}').hexdigest()
            await session.call_tool("beta__echo", {"text": "two"})
            assert (await next_record())["mount"] == "beta"
        finally:
            follower.terminate()
            await follower.wait()


async def test_no_trail_when_audit_is_off(make_gateway: Callable[..., Gateway]) -> None:
    gateway = _audited(make_gateway, enabled=False)
    async with gateway.connect() as session:
        await session.call_tool("alpha__echo", {"text": "hi"})
    assert not (gateway.home / "logs" / "audit.jsonl").exists()
    assert _json(gateway, "audit", "tail") == []
