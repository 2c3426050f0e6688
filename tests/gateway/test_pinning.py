"""Pinned tool definitions: a backend changing a tool between runs is withheld until approved."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from gateway_harness import (
    FIXTURE_SERVERS,
    Gateway,
    Notifications,
    all_tools,
    backend,
    texts,
    write_config,
)
from mcp.shared.exceptions import MCPError

from vmcp.config import load_config
from vmcp.gateway.gateway import Gateway as GatewayCore
from vmcp.monitoring.metrics import GatewayMetrics

pytestmark = pytest.mark.anyio

GAMMA = FIXTURE_SERVERS / "gamma.py"
CHANGED = "Looks things up. Also deletes everything."


def gamma_gateway(tmp_path: Path, run: str, **settings: Any) -> Gateway:
    """A gateway over gamma, in the one home every run of a test shares."""
    config = write_config(tmp_path / run / "vmcp.toml", {"gamma": backend(GAMMA, **settings)})
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return Gateway(home=home, config=config, log=tmp_path / f"{run}.log")


async def vmcp(gateway: Gateway, *args: str) -> str:
    """Run ``vmcp ARGS`` against the gateway's home; its standard output."""
    done = await anyio.run_process([sys.executable, *gateway.command_args(*args)],
                                   env={**os.environ, **gateway.env()}, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


async def tool_names(gateway: Gateway, **session: Any) -> set[str]:
    async with gateway.connect(**session) as client:
        return {tool.name for tool in await all_tools(client)}


async def test_changed_tool_is_withheld_until_approved(tmp_path: Path) -> None:
    first = gamma_gateway(tmp_path, "first", pinning="enforce")
    assert "gamma__lookup" in await tool_names(first)
    pins = json.loads((tmp_path / "home" / "pins" / "gamma.json").read_text())
    assert set(pins["pinned"]) == {"lookup", "store", "listed", "purge"}

    second = gamma_gateway(tmp_path, "second", pinning="enforce",
                           env={"GAMMA_LOOKUP_DESCRIPTION": CHANGED})
    notes = Notifications()
    async with second.connect(message_handler=notes) as client:
        names = {tool.name for tool in await all_tools(client)}
        assert "gamma__lookup" not in names and "gamma__store" in names
        with pytest.raises(MCPError, match="Unknown tool: gamma__lookup"):
            await client.call_tool("gamma__lookup", {})

        info = json.loads(await vmcp(second, "info", "gamma", "--json"))
        [change] = info["pinning"]["changes"]
        assert change["tool"] == "lookup" and change["state"] == "withheld"
        assert change["fields"] == ["description"]
        assert change["current"]["description"] == CHANGED
        assert "description" not in change["pinned"]
        shown = await vmcp(second, "info", "gamma")
        assert "lookup withheld: changed description" in shown

        assert (await vmcp(second, "approve", "gamma", "lookup")).strip() == \
            "approved gamma lookup"
        await notes.wait_for_type(types.ToolListChangedNotification)
        tools = {tool.name: tool for tool in await all_tools(client)}
        assert tools["gamma__lookup"].description == CHANGED
        assert texts(await client.call_tool("gamma__lookup", {})) == ["gamma lookup"]
    assert "changed since it was pinned (description); withheld" in second.log_text()


async def test_warn_only_flags_and_approve_works_without_a_gateway(tmp_path: Path) -> None:
    assert "gamma__lookup" in await tool_names(gamma_gateway(tmp_path, "first"))
    changed = gamma_gateway(tmp_path, "second", env={"GAMMA_LOOKUP_DESCRIPTION": CHANGED})
    assert "gamma__lookup" in await tool_names(changed)
    assert "changed since it was pinned (description); shown, flagged" in changed.log_text()
    approved = json.loads(await vmcp(changed, "approve", "gamma", "--json"))
    assert approved == {"id": "gamma", "approved": ["lookup"]}
    pins = json.loads((tmp_path / "home" / "pins" / "gamma.json").read_text())
    assert pins["pinned"]["lookup"]["description"] == CHANGED and pins["pending"] == {}
    again = await anyio.run_process(
        [sys.executable, *changed.command_args("approve", "gamma")],
        env={**os.environ, **changed.env()}, check=False)
    assert again.returncode == 1 and b"no changed tool waits" in again.stderr


async def test_pinning_off_records_nothing(tmp_path: Path) -> None:
    assert "gamma__lookup" in await tool_names(gamma_gateway(tmp_path, "first", pinning="off"))
    assert not (tmp_path / "home" / "pins").exists()


async def test_the_metric_says_what_was_withheld(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMCP_HOME", str(tmp_path / "home"))
    for run, env in (("first", {}), ("second", {"GAMMA_LOOKUP_DESCRIPTION": CHANGED})):
        path = write_config(tmp_path / run / "vmcp.toml",
                            {"gamma": backend(GAMMA, pinning="enforce", env=env)})
        gateway = GatewayCore(load_config(path)[0])
        try:
            await gateway.start()
            scraped = GatewayMetrics(gateway).exposition().decode()
        finally:
            await gateway.stop()
    assert 'vmcp_tools_changed{mount="gamma",state="withheld"} 1.0' in scraped
    assert "gamma__lookup" not in gateway.namespace.tools
