"""The ``disk`` driver on its own: storage, expiry, prefixes, bounds, persistence, processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest
from vmcp_cache_disk.driver import DiskCache

from vmcp.plugins import load_driver

pytestmark = pytest.mark.anyio


async def test_found_through_its_entry_point() -> None:
    assert load_driver("caches", "disk") is DiskCache


async def test_store_read_and_overwrite(tmp_path: Path) -> None:
    cache = DiskCache(directory=str(tmp_path))
    try:
        assert await cache.get("k") is None
        await cache.set("k", b"one", 60)
        assert await cache.get("k") == b"one"
        await cache.set("k", b"two", 60)
        assert await cache.get("k") == b"two"
        big = bytes(range(256)) * 1024  # large values go to files of their own
        await cache.set("big", big, 60)
        assert await cache.get("big") == big
    finally:
        await cache.aclose()


async def test_entries_expire(tmp_path: Path) -> None:
    cache = DiskCache(directory=str(tmp_path))
    try:
        await cache.set("short", b"v", 0.05)
        await cache.set("long", b"v", 60)
        await anyio.sleep(0.1)  # expiry is a matter of wall-clock time
        assert await cache.get("short") is None
        assert await cache.get("long") == b"v"
    finally:
        await cache.aclose()


async def test_delete_prefix(tmp_path: Path) -> None:
    cache = DiskCache(directory=str(tmp_path))
    try:
        for key in ("v1|a|x", "v1|a|y", "v1|ab|z", "v1|b|x", "v0|a|x"):
            await cache.set(key, key.encode(), 60)
        assert await cache.delete_prefix("v1|a|") == 2
        assert [await cache.get(k) for k in ("v1|a|x", "v1|ab|z", "v1|b|x", "v0|a|x")] == [
            None, b"v1|ab|z", b"v1|b|x", b"v0|a|x"]
        assert await cache.delete_prefix("v1|") == 2
        assert len(cache) == 1
    finally:
        await cache.aclose()


async def test_bounds_evict_the_oldest_and_count_it(tmp_path: Path) -> None:
    cache = DiskCache(directory=str(tmp_path), max_entries=3)
    try:
        for n in range(5):
            await cache.set(f"k{n}", b"v", 60)
        assert len(cache) == 3
        assert cache.evictions() == 2
        assert await cache.get("k0") is None
        assert await cache.get("k4") == b"v"
    finally:
        await cache.aclose()
    small = DiskCache(directory=str(tmp_path / "small"), max_bytes=256 * 1024)
    try:
        for n in range(8):
            await small.set(f"k{n}", bytes(64 * 1024), 60)
        assert small.evictions() > 0
        assert await small.get("k7") == bytes(64 * 1024)
    finally:
        await small.aclose()


async def test_entries_survive_a_reopen(tmp_path: Path) -> None:
    first = DiskCache(directory=str(tmp_path))
    await first.set("k", b"kept", 60)
    await first.aclose()
    second = DiskCache(directory=str(tmp_path))
    try:
        assert await second.get("k") == b"kept"
    finally:
        await second.aclose()


async def test_shared_with_another_process(tmp_path: Path) -> None:
    cache = DiskCache(directory=str(tmp_path))
    try:
        await cache.set("from-parent", b"p", 60)
        script = textwrap.dedent(f"""
            import asyncio
            from vmcp_cache_disk.driver import DiskCache

            async def main():
                cache = DiskCache(directory={str(tmp_path)!r})
                assert await cache.get("from-parent") == b"p"
                await cache.set("from-child", b"c", 60)
                await cache.aclose()

            asyncio.run(main())
        """)
        with anyio.fail_after(30):
            done = await anyio.run_process([sys.executable, "-c", script], check=False,
                                           stderr=subprocess.STDOUT)
        assert done.returncode == 0, done.stdout.decode()
        assert await cache.get("from-child") == b"c"
    finally:
        await cache.aclose()


def test_default_folder_is_under_vmcp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMCP_HOME", str(tmp_path))
    cache = DiskCache()
    assert cache.directory == tmp_path / "cache" / "disk"
    anyio.run(cache.aclose)
