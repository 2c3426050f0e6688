"""LineSplitter: any chunking of a stream yields the same lines, and over-long lines are dropped."""

from __future__ import annotations

import random

import pytest

from vmcp.transports.lines import LineSplitter


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
