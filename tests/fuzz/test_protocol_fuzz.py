"""A seeded protocol fuzzer against real gateway processes: stdio, HTTP and WebSocket fronts,
and a backend that writes hostile lines between its real answers.

After every batch the gateway must still answer a ping and a tool call, and every tracked
request of the batch must have got exactly one answer carrying its own id. The seed is fixed
(``VMCP_FUZZ_SEED``) and named in every failure; ``VMCP_FUZZ_MESSAGES`` runs longer.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from fuzz_messages import BATCH, MESSAGES, SEED, Batch, check_answers, make_batch
from websockets.asyncio.client import connect

pytestmark = pytest.mark.anyio

HOSTILE = Path(__file__).resolve().parent.parent / "fixtures" / "servers" / "hostile.py"
TIMEOUT = 30.0
INITIALIZE = {"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fuzz"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def _config(folder: Path) -> Path:
    path = folder / "vmcp.toml"
    mount = f"command = {json.dumps(sys.executable)}\nargs = [{json.dumps(str(HOSTILE))}]\n"
    path.write_text("[transports.http]\nport = 0\n[transports.ws]\nport = 0\n[servers.h]\n"
                    + mount, encoding="utf-8")
    return path


class Inbox:
    """Messages received on a stream, and a way to wait for one id."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._changed = anyio.Event()

    def add(self, data: bytes | str) -> None:
        """Record one received message (every one must be a JSON object)."""
        message = json.loads(data)
        assert isinstance(message, dict), data
        self.messages.append(message)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, request_id: Any) -> dict[str, Any]:
        """The answer with ``request_id``, once it arrived."""
        while True:
            for message in self.messages:
                if message.get("id") == request_id and "method" not in message:
                    return message
            await self._changed.wait()

    def take(self) -> list[dict[str, Any]]:
        """Everything received so far (and forget it)."""
        taken, self.messages = self.messages, []
        return taken


async def _healthy(send: Callable[[bytes], Awaitable[None]],
                   answer: Callable[[str], Awaitable[dict[str, Any]]], n: int, seed: int) -> None:
    """The gateway answers a ping and a tool call (sent after the batch, so answered last)."""
    await send(json.dumps({"jsonrpc": "2.0", "id": f"ping{n}", "method": "ping"}).encode())
    await send(json.dumps({"jsonrpc": "2.0", "id": f"call{n}", "method": "tools/call", "params": {
        "name": "h__echo", "arguments": {"text": f"health {n}"}}}).encode())
    with anyio.fail_after(TIMEOUT):
        assert (await answer(f"ping{n}"))["result"] == {}, f"seed {seed}"
        reply = await answer(f"call{n}")
    assert reply["result"]["content"][0]["text"] == f"hostile: health {n}", f"seed {seed}"


async def _fuzz_stream(send: Callable[[bytes], Awaitable[None]], inbox: Inbox,
                       newline_free: bool, backend_noise: bool = False) -> None:
    rng = random.Random(SEED)
    await send(json.dumps(INITIALIZE).encode())
    with anyio.fail_after(TIMEOUT):
        await inbox.wait_for("init")
    await send(json.dumps(INITIALIZED).encode())
    for n in range(max(1, MESSAGES // BATCH)):
        batch = make_batch(rng, (n + 1) * 1000, newline_free, backend_noise)
        for message in batch.messages:
            await send(message)
        await _healthy(send, inbox.wait_for, n, SEED)
        check_answers(batch, inbox.take(), SEED)


async def _stop(process: Process) -> None:
    if process.returncode is None:
        process.terminate()
        with anyio.move_on_after(10):
            await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()


@asynccontextmanager
async def _stdio_gateway(folder: Path) -> AsyncIterator[tuple[Process, Inbox]]:
    env = {**os.environ, "VMCP_HOME": str(folder / "home")}
    process = await anyio.open_process(
        [sys.executable, "-m", "vmcp", "--config", str(_config(folder)), "start"], env=env,
        stderr=subprocess.DEVNULL)
    inbox = Inbox()

    async def read() -> None:
        assert process.stdout is not None
        stream = BufferedByteReceiveStream(process.stdout)
        while True:
            try:
                inbox.add(await stream.receive_until(b"\n", 1 << 26))
            except (anyio.EndOfStream, anyio.IncompleteRead):
                return

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            yield process, inbox
            assert process.stdin is not None
            await process.stdin.aclose()
            with anyio.fail_after(TIMEOUT):
                assert await process.wait() == 0
    finally:
        await _stop(process)


@pytest.mark.parametrize("backend_noise", [False, True], ids=["client-side", "backend-side"])
async def test_fuzz_stdio_front(tmp_path: Path, backend_noise: bool) -> None:
    async with _stdio_gateway(tmp_path) as (process, inbox):
        assert process.stdin is not None
        stdin = process.stdin

        async def send(data: bytes) -> None:
            await stdin.send(data + b"\n")

        await _fuzz_stream(send, inbox, newline_free=True, backend_noise=backend_noise)
        assert process.returncode is None, f"seed {SEED}: the gateway exited"


@asynccontextmanager
async def _network_gateway(folder: Path) -> AsyncIterator[dict[str, str]]:
    env = {**os.environ, "VMCP_HOME": str(folder / "home")}
    process = await anyio.open_process(
        [sys.executable, "-m", "vmcp", "--config", str(_config(folder)), "start",
         "--transport", "http", "--transport", "ws"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    urls: dict[str, str] = {}
    try:
        assert process.stderr is not None
        stream = BufferedByteReceiveStream(process.stderr)
        with anyio.fail_after(TIMEOUT):
            while len(urls) < 2:
                line = (await stream.receive_until(b"\n", 1 << 20)).decode()
                if line.startswith("vmcp: serving "):
                    name, _, url = line.removeprefix("vmcp: serving ").partition(" on ")
                    urls[name] = url.strip()
        async with anyio.create_task_group() as tg:
            async def drain() -> None:
                while True:
                    try:
                        await stream.receive(1 << 16)
                    except (anyio.EndOfStream, anyio.ClosedResourceError):
                        return

            tg.start_soon(drain)
            yield urls
            tg.cancel_scope.cancel()
    finally:
        await _stop(process)


async def test_fuzz_http_front(tmp_path: Path) -> None:
    async with _network_gateway(tmp_path) as urls, aiohttp.ClientSession() as web:
        url = urls["http"]
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        opened = await web.post(url, data=json.dumps(INITIALIZE), headers=headers)
        assert opened.status == 200
        headers["Mcp-Session-Id"] = opened.headers["Mcp-Session-Id"]
        await opened.read()
        await web.post(url, data=json.dumps(INITIALIZED), headers=headers)
        rng = random.Random(SEED)
        inbox = Inbox()

        async def post(data: bytes) -> None:
            async with web.post(url, data=data, headers=headers) as response:
                body = await response.read()
                assert response.status < 500, f"seed {SEED}: {response.status} for {data[:200]!r}"
                if response.status != 202:
                    assert response.content_type == "application/json", (
                        f"seed {SEED}: {response.content_type} for {data[:200]!r}")
                    reply = json.loads(body)
                    for message in reply if isinstance(reply, list) else [reply]:
                        inbox.add(json.dumps(message))

        for n in range(max(1, MESSAGES // BATCH)):
            batch = make_batch(rng, (n + 1) * 1000, newline_free=False)
            await _concurrently(post, batch)
            await _healthy(post, inbox.wait_for, n, SEED)
            check_answers(batch, inbox.take(), SEED)


async def _concurrently(post: Callable[[bytes], Awaitable[None]], batch: Batch) -> None:
    async with anyio.create_task_group() as tg:
        for message in batch.messages:
            tg.start_soon(post, message)


async def test_fuzz_websocket_front(tmp_path: Path) -> None:
    async with _network_gateway(tmp_path) as urls, connect(urls["ws"], max_size=None) as ws:
        inbox = Inbox()

        async def send(data: bytes) -> None:
            try:
                text = data.decode()
            except UnicodeDecodeError:  # not UTF-8: only a binary frame can carry it
                await ws.send(data)
            else:
                await ws.send(text)

        async def read() -> None:
            async for frame in ws:
                inbox.add(frame)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await _fuzz_stream(send, inbox, newline_free=False)
            tg.cancel_scope.cancel()
        assert ws.close_code is None, f"seed {SEED}: closed with {ws.close_code}"
