"""LineSplitter: any chunking of a stream yields the same lines, and over-long lines are dropped."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re

import anyio
import pytest

from vmcp.transports.lines import LineSplitter, LineWriter


def split_all(stream: bytes, cuts: list[int], limit: int) -> tuple[list[bytes], int]:
    lines: list[bytes] = []
    oversize = []
    splitter = LineSplitter(limit, lines.append, lambda: oversize.append(1))
    start = 0
    for cut in [*sorted(cuts), len(stream)]:
        if cut > start:
            splitter.feed(stream[start:cut])
            start = cut
    return lines, len(oversize)


def expected(stream: bytes, limit: int) -> tuple[list[bytes], int]:
    *complete, tail = stream.split(b"\n")
    kept = [line for line in complete if len(line) <= limit and line.strip()]
    # an unfinished line is reported as soon as it outgrows the limit
    return kept, sum(1 for line in [*complete, tail] if len(line) > limit)


@pytest.mark.parametrize("seed", range(40))
def test_any_chunking_gives_the_same_lines(seed: int) -> None:
    rng = random.Random(seed)
    pieces = [rng.choice([b"", b" ", b"{}", b"x" * rng.randint(1, 40), b"y" * rng.randint(60, 90)])
              for _ in range(rng.randint(1, 30))]
    stream = b"\n".join(pieces) + rng.choice([b"\n", b"", b"partial"])
    cuts = [rng.randint(0, len(stream)) for _ in range(rng.randint(0, 12))]
    assert split_all(stream, cuts, 50) == expected(stream, 50)


def test_a_line_split_across_many_chunks_is_joined() -> None:
    stream = b'{"jsonrpc":"2.0","id":1}\n{"a":2}\n'
    assert split_all(stream, list(range(len(stream))), 100) == ([b'{"jsonrpc":"2.0","id":1}',
                                                                  b'{"a":2}'], 0)


def test_an_over_long_line_is_reported_once_and_the_next_line_survives() -> None:
    stream = b"z" * 500 + b"\nok\n"
    assert split_all(stream, [10, 200, 300, 499, 501], 100) == ([b"ok"], 1)


class RecordingTransport:
    """Stands in for a pipe transport: keeps each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


@pytest.mark.anyio
async def test_writer_groups_a_turn_and_writes_every_16_without_waiting() -> None:
    transport = RecordingTransport()
    writer = LineWriter(transport)  # type: ignore[arg-type]
    for n in range(40):
        writer.write({"id": n})
    # the turn's first went out alone, at once, then two groups of 16; the last 7 wait for
    # the end of the turn
    assert [data.count(b"\n") for data in transport.writes] == [1, 16, 16]
    await asyncio.sleep(0)
    assert [data.count(b"\n") for data in transport.writes] == [1, 16, 16, 7]
    lines = b"".join(transport.writes).splitlines()
    assert lines == [b'{"id":%d}' % n for n in range(40)]


@pytest.mark.anyio
async def test_writer_sends_a_large_message_at_once() -> None:
    transport = RecordingTransport()
    writer = LineWriter(transport)  # type: ignore[arg-type]
    writer.write({"id": 1})
    writer.write({"id": 2})
    writer.write({"id": 3, "text": "x" * 70_000})
    assert [data.count(b"\n") for data in transport.writes] == [1, 2]
    writer.write({"id": 4})
    await asyncio.sleep(0)
    assert [data.count(b"\n") for data in transport.writes] == [1, 2, 1]


@pytest.mark.anyio
async def test_a_lone_message_is_written_at_once_and_the_next_turn_starts_afresh() -> None:
    transport = RecordingTransport()
    writer = LineWriter(transport)  # type: ignore[arg-type]
    writer.write({"id": 1})
    assert transport.writes == [b'{"id":1}\n']  # not held back until the turn ends
    await asyncio.sleep(0)
    writer.write({"id": 2})
    assert transport.writes == [b'{"id":1}\n', b'{"id":2}\n']


def test_a_failing_consumer_costs_only_its_line() -> None:
    lines: list[bytes] = []

    def consume(line: bytes) -> None:
        if line.startswith(b"bad"):
            raise RecursionError("too deep")
        lines.append(line)

    splitter = LineSplitter(1000, consume, lambda: None)
    splitter.feed(b"one\nbad1\ntwo\nba")  # a failure mid-chunk keeps the rest of the chunk
    splitter.feed(b"d2 held across chunks\nthree\n")  # a failing held line is not kept
    splitter.feed(b"four\n")
    assert lines == [b"one", b"two", b"three", b"four"]


@pytest.mark.anyio
async def test_writer_writes_a_lone_surrogate_as_its_escape_and_never_raises() -> None:
    transport = RecordingTransport()
    writer = LineWriter(transport)  # type: ignore[arg-type]
    writer.write({"id": 1, "result": {"text": "cut \ud83d"}})
    writer.write({"id": 2, "result": {"bad": {1, 2}}})  # not JSON: an error answers id 2
    writer.write({"method": "notifications/x", "params": {"bad": object()}})  # dropped
    writer.write({"id": 3, "result": {}})
    await asyncio.sleep(0)
    lines = [json.loads(line) for line in b"".join(transport.writes).splitlines()]
    assert lines[0] == {"id": 1, "result": {"text": "cut \ud83d"}}
    assert lines[1]["id"] == 2 and lines[1]["error"]["code"] == -32603
    assert lines[2] == {"id": 3, "result": {}}
    assert len(lines) == 3


@pytest.mark.anyio
async def test_a_client_far_behind_loses_notifications_never_answers(
        caplog: pytest.LogCaptureFixture) -> None:
    """On a real pipe nobody reads, notifications stop queueing once the budget is unread;
    the answer written after them still comes, and so do notifications once it catches up."""
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(write_fd, "wb", 0))
    budget = 64 * 1024
    writer = LineWriter(transport, notification_budget=budget)
    note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "x" * 1000}}
    for _ in range(1000):  # a megabyte: far more than the pipe and the budget hold
        writer.write(note)
        await asyncio.sleep(0)  # each turn's writes go out, as a backend's flood would
    assert transport.get_write_buffer_size() <= budget + 2048
    writer.write({"jsonrpc": "2.0", "id": 1, "result": {}})
    assert "notifications to it are dropped" in caplog.text
    reader = asyncio.StreamReader(limit=1 << 20)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", 0))
    try:
        lines = []
        with anyio.fail_after(10):
            while not lines or b'"id":1' not in lines[-1]:
                lines.append(await reader.readline())
            writer.write(note)  # caught up: it goes again
            lines.append(await reader.readline())
        delivered = len(lines) - 2  # all but the answer and the last notification
        assert 0 < delivered < 1000  # some notifications went, the rest were dropped
        assert json.loads(lines[-1]) == note
        counted = re.search(r"(\d+) notifications to it were dropped", caplog.text)
        assert counted is not None and int(counted.group(1)) == 1000 - delivered
    finally:
        read_transport.close()
        transport.close()
