"""The ``disk`` cache in running gateways: it survives a restart and keeps personas apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from cache_harness import (
    EVENT_TIMEOUT,
    call_text,
    counting_mount,
    gateway,
    logged_counts,
    read_text,
    write_config,
)

from vmcp.persona import PersonaStore

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]


def disk_config(tmp_path: Path, **mount: Any) -> Path:
    """A gateway configuration: the counting backend (logging its counts), a disk cache."""
    backend = counting_mount(env={"COUNTING_LOG": str(tmp_path / "counts.log")},
                             cache_tools=["lookup"], cache_resources=["count://*"], **mount)
    return write_config(tmp_path / "vmcp.toml", {"counting": backend},
                        {"backend": "disk", "directory": str(tmp_path / "cache")})


async def test_a_restarted_gateway_reuses_lists_and_results(tmp_path: Path) -> None:
    config = disk_config(tmp_path)
    for run in ("first", "second"):
        async with gateway(config, tmp_path / "home", tmp_path / f"{run}.log") as session:
            with anyio.fail_after(EVENT_TIMEOUT):
                assert await call_text(session, "counting__lookup", key="k") == "k #1"
                assert await read_text(session, "count://a") == "count://a #1"
                names = [tool.name for tool in (await session.list_tools()).tools]
                assert "counting__lookup" in names
    seen = logged_counts(tmp_path / "counts.log")
    # The second gateway's backend was asked nothing: lists and results came from the disk.
    assert seen["tools/list"] == 1
    assert seen["prompts/list"] == 1
    assert seen["tools/call:lookup"] == 1
    assert seen["resources/read:count://a"] == 1


async def test_results_never_cross_personas(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = PersonaStore(home / "config" / "personas")
    for name in ("dev", "ops"):
        store.create(name)
        store.update(name, lambda persona: persona.enable("counting"))
    config = disk_config(tmp_path)
    for run, persona in enumerate(("dev", "ops", "dev")):
        async with gateway(config, home, tmp_path / f"run{run}.log", "--persona",
                           persona) as session:
            with anyio.fail_after(EVENT_TIMEOUT):
                await call_text(session, "counting__lookup", key="k")
    # dev's result is not ops's: ops misses; dev's second gateway hits dev's entry
    assert logged_counts(tmp_path / "counts.log")["tools/call:lookup"] == 2


async def test_public_mounts_share_results_between_personas(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = PersonaStore(home / "config" / "personas")
    for name in ("dev", "ops"):
        store.create(name)
        store.update(name, lambda persona: persona.enable("counting"))
    config = disk_config(tmp_path, cache_public=True)
    for run, persona in enumerate(("dev", "ops")):
        async with gateway(config, home, tmp_path / f"run{run}.log", "--persona",
                           persona) as session:
            with anyio.fail_after(EVENT_TIMEOUT):
                assert await call_text(session, "counting__lookup", key="k") == "k #1"
    assert logged_counts(tmp_path / "counts.log")["tools/call:lookup"] == 1
