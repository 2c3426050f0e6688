"""The decoding and encoding policy of ``vmcp.protocol.jsonrpc``, with orjson and without.

Each case is decoded in this process (orjson installed) and in a child interpreter where
orjson cannot be imported: both must give the same outcome.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from typing import Any

import pytest

from vmcp.protocol import jsonrpc

DEEP = b"[" * 2000 + b"]" * 2000
CASES: list[bytes] = [
    b'{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":"\\ud800"}}',
    b'{"jsonrpc":"2.0","id":2,"method":"m","params":{"a":"\xed\xa0\x80"}}',
    b'{"jsonrpc":"2.0","id":"\\udfff","method":"m"}',
    b'{"jsonrpc":"2.0","id":3,"method":"m","params":{"a":' + DEEP + b"}}",
    b'{"jsonrpc":"2.0","id":4,"p":' + b"[" * 1020 + b"]" * 1020 + b"}",  # deep but allowed
    b'{"jsonrpc":"2.0","id":5,"p":' + b"[" * 1030 + b"]" * 1030 + b"}",  # just too deep
    b'{"jsonrpc":"2.0","id":6,"text":"\\ud83d\\ude00"}',  # a pair: one character
    b'{"jsonrpc":"2.0","id":7,"method":"m","params":',  # cut short, id still readable
    b'{"jsonrpc":"2.0","params":{"id":8},"method":"m"',  # an inner id is not the id
    b"not json",
]

PROBE = """
import json, sys
if sys.argv[1] == "std":
    sys.modules["orjson"] = None
from vmcp.protocol import jsonrpc
out = []
for case in json.loads(sys.stdin.read()):
    try:
        value = jsonrpc.decode(case.encode("latin-1"))
        out.append(["ok", jsonrpc.encode_line(value).decode("latin-1")])
    except jsonrpc.DecodeError as exc:
        out.append([exc.code, exc.request_id])
print(json.dumps(out))
"""


def outcomes(library: str) -> list[Any]:
    """Every case's outcome in a child interpreter using ``library`` ("orjson" or "std")."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, library], check=True, capture_output=True,
        input=json.dumps([case.decode("latin-1") for case in CASES]), text=True)
    return json.loads(done.stdout)


def test_both_libraries_follow_one_policy() -> None:
    with_orjson, with_std = outcomes("orjson"), outcomes("std")
    assert with_orjson == with_std
    assert [o[0] for o in with_std] == [
        -32700, -32700, -32700, -32600, "ok", -32600, "ok", -32700, -32700, -32700]
    assert [o[1] for o in with_std if o[0] != "ok"] == [1, 2, None, 3, 5, 7, None, None]
    assert json.loads(with_std[6][1].encode("latin-1")) == {
        "jsonrpc": "2.0", "id": 6, "text": "\U0001f600"}


@pytest.mark.parametrize(("message", "expected"), [
    ({"id": 1, "result": {"text": "\ud800"}}, b'{"id":1,"result":{"text":"\\ud800"}}\n'),
    ({"id": 2, "result": {"n": 1 << 70}}, b'{"id":2,"result":{"n":%d}}\n' % (1 << 70)),
    ({"id": 3, "result": jsonrpc.decode(b"[" * 1000 + b"]" * 1000)},
     b'{"id":3,"result":' + b"[" * 1000 + b"]" * 1000 + b"}\n"),
])
def test_encoding_decoded_data_never_fails(message: dict[str, Any], expected: bytes) -> None:
    """Too deep for orjson's writer, beyond 64 bits, or a lone surrogate (as its escape)."""
    assert jsonrpc.encode_line(message) == expected


def test_classification() -> None:
    classify = jsonrpc.classify
    assert classify({"id": 1, "method": "m"}) is jsonrpc.REQUEST
    assert classify({"id": 1, "method": None}) is jsonrpc.REQUEST  # refused, but answered
    assert classify({"method": "m"}) is jsonrpc.NOTIFICATION
    assert classify({"id": 1, "result": {}}) is jsonrpc.RESPONSE
    assert classify({"id": 1, "error": {}}) is jsonrpc.RESPONSE
    assert classify({"id": 1}) is jsonrpc.INVALID
    assert classify({}) is jsonrpc.INVALID


@pytest.mark.parametrize(("data", "request_id"), [
    (b'{"method":"id","id":4,', 4),  # a value reading "id" is not the key
    (b'{"params":{"id":3},"id":"a"', "a"),  # an inner id is not the message's
    (b'{"id":"\\ud800"', None),  # a lone surrogate is no id to answer with
    (b'{"id":1.5}', None),
    (b'[{"id":1}]', None),
])
def test_readable_id(data: bytes, request_id: str | int | None) -> None:
    assert jsonrpc.readable_id(data) == request_id


def test_a_kept_line_takes_no_more_memory_than_its_length() -> None:
    # orjson's bytes hold a buffer of at least 4 KiB whatever their length; a line kept in
    # a replay buffer for each of thousands of sessions must hold only itself
    message = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text"}]}}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [jsonrpc.encode_kept_line(message) for _ in range(100)]
        per_line = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert kept[0] == jsonrpc.encode_line(message)
    assert per_line < 2 * len(kept[0]) + 64
