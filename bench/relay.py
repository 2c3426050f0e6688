"""The floor: a plain asyncio pass-through relay that parses and re-serializes every line.

It spawns the backend given on its command line and copies newline-delimited JSON both ways,
decoding each line and encoding it again, with no routing, no id mapping and no state. The
gateway cannot be cheaper than this on the same event loop and JSON library, so its added
latency is compared with this relay's.

Run as ``python -m bench.relay [--fast] -- COMMAND [ARG ...]``; ``--fast`` relays with orjson
on uvloop (what the gateway itself runs on when its ``fast`` extra is installed), the floor
the issue's stdio targets are set against.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable

_LIMIT = 1 << 26


def _std_line(line: bytes) -> bytes:
    return json.dumps(json.loads(line), separators=(",", ":")).encode() + b"\n"


def _fast_reencoder() -> Callable[[bytes], bytes]:
    import orjson

    dumps, loads, newline = orjson.dumps, orjson.loads, orjson.OPT_APPEND_NEWLINE

    def reencode(line: bytes) -> bytes:
        return dumps(loads(line), option=newline)

    return reencode


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                reencode: Callable[[bytes], bytes]) -> None:
    while line := await reader.readline():
        writer.write(reencode(line))
        await writer.drain()
    writer.close()


async def relay(command: list[str], reencode: Callable[[bytes], bytes] = _std_line) -> None:
    """Relay this process's stdin/stdout to a child running ``command``, every line decoded
    and encoded again by ``reencode``."""
    loop = asyncio.get_running_loop()
    child = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=_LIMIT)
    assert child.stdin is not None and child.stdout is not None
    stdin = asyncio.StreamReader(limit=_LIMIT)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stdin), os.fdopen(0, "rb", 0))
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(1, "wb", 0))
    stdout = asyncio.StreamWriter(transport, protocol, None, loop)
    to_backend = loop.create_task(_pump(stdin, child.stdin, reencode))
    await _pump(child.stdout, stdout, reencode)
    to_backend.cancel()
    await child.wait()


def main() -> None:
    """Parse ``[--fast] -- COMMAND ...`` and relay."""
    command = sys.argv[1:]
    fast = command[:1] == ["--fast"]
    if fast:
        command = command[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        sys.exit("usage: python -m bench.relay [--fast] -- COMMAND [ARG ...]")
    if not fast:
        asyncio.run(relay(command))
        return
    import uvloop

    uvloop.run(relay(command, _fast_reencoder()))


if __name__ == "__main__":
    main()
