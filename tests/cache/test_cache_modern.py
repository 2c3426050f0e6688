"""The cache in a running gateway in front of a 2026-07-28 backend: its ``ttlMs`` and
``cacheScope`` hints are honoured (``tests/fixtures/servers/modern.py``: ``modern://doc``
may be kept a minute, ``modern://zero`` not at all, ``modern://private`` a minute for one
auth context only)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cache_harness import gateway, read_text, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

MODERN = Path(__file__).resolve().parents[1] / "fixtures" / "servers" / "modern.py"


async def test_a_modern_backends_cache_hints_are_honoured(tmp_path: Path) -> None:
    mount = {"command": sys.executable, "args": [str(MODERN)], "era": "modern",
             "cache_resources": ["modern://*"]}
    config = write_config(tmp_path / "vmcp.toml", {"m": mount}, {"backend": "memory"})
    async with gateway(config, tmp_path / "home", tmp_path / "gateway.log") as session:
        assert [await read_text(session, "modern://doc") for _ in range(2)] == [
            "modern://doc read 1"] * 2
        assert [await read_text(session, "modern://zero") for _ in range(2)] == [
            "modern://zero read 1", "modern://zero read 2"]
        # kept, for this caller's auth context (the unit tests show two never share it)
        assert [await read_text(session, "modern://private") for _ in range(2)] == [
            "modern://private read 1"] * 2
        reads = (await session.call_tool("m__reads", {})).structured_content
    assert reads == {"modern://doc": 1, "modern://zero": 2, "modern://private": 1}
