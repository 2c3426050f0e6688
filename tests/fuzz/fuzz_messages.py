"""Seeded message generation for the protocol fuzzer.

A batch mixes *tracked* calls (``ping`` and tool calls with unique integer ids, whose answer
is known) with hostile messages: malformed JSON, lone surrogates, invalid UTF-8, deep
nesting, wrong member types, stray responses, batches, unknown methods. Hostile messages
never carry a tracked id, so every tracked id must get exactly one answer, its own.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from typing import Any

#: messages sent to each front (set VMCP_FUZZ_MESSAGES for a longer run)
MESSAGES = int(os.environ.get("VMCP_FUZZ_MESSAGES", "1500"))
#: messages between two health checks
BATCH = 100
#: the seed (set VMCP_FUZZ_SEED to replay or vary a run)
SEED = int(os.environ.get("VMCP_FUZZ_SEED", "1515"))
#: noise the hostile backend may write before a real answer
BACKEND_NOISE = ["deep", "garbage", "bad_utf8", "surrogate", "stray", "array", "blank", "null"]


def _line(message: Any) -> bytes:
    return json.dumps(message).encode()


def _hostile(rng: random.Random, n: int, newline_free: bool) -> bytes:
    """One hostile message (its ids, when it has any, are never tracked ones)."""
    hid = f"h{n}"
    valid = _line({"jsonrpc": "2.0", "id": hid, "method": "tools/call",
                   "params": {"name": "h__echo", "arguments": {"text": "x"}}})
    choices = [
        lambda: valid[: rng.randrange(1, len(valid))],
        lambda: bytes(rng.choice(range(256)) for _ in range(rng.randrange(1, 60))),
        lambda: valid.replace(b'"x"', b'"\\ud800"'),
        lambda: valid.replace(b'"x"', b'"\\udc00 tail"'),
        lambda: valid.replace(b'"x"', b'"\xed\xa0\x80"'),
        lambda: valid.replace(b'"h', b'"\\ud83d'),
        lambda: _line({"jsonrpc": "2.0", "id": hid, "method": "ping",
                       "params": {"d": 0}}).replace(b"0", b"[" * (d := rng.randrange(900, 3000))
                                                    + b"]" * d),
        lambda: b"[" * rng.randrange(1000, 4000),
        lambda: _line({"jsonrpc": "2.0", "id": hid, "method": rng.choice(
            [None, 5, [], {}, True, "", "no/such/method", "initialize/x"])}),
        lambda: _line({"jsonrpc": "2.0", "id": rng.choice([None, 1.5, True, {}, [], -(2 ** 70)]),
                       "method": "ping"}),
        lambda: _line({"jsonrpc": "2.0", "id": hid, "method": "tools/call",
                       "params": rng.choice([[], "s", 3, {"name": 7}, {"name": "h__echo",
                                             "arguments": rng.choice([[], "s", 1, None])}])}),
        lambda: _line({"jsonrpc": "2.0", "id": hid, "method": "tools/call",
                       "params": {"name": "no__such", "arguments": {}}}),
        lambda: _line({"jsonrpc": "2.0", "id": hid, "result": {}}),
        lambda: _line({"jsonrpc": "2.0", "id": rng.randrange(10 ** 8, 10 ** 9), "error": 5}),
        lambda: _line({"jsonrpc": "2.0", "id": hid}),
        lambda: _line(rng.choice([[], [1], [{}], {}, None, True, 1, "s"])),
        lambda: _line({"jsonrpc": "2.0", "method": "notifications/cancelled",
                       "params": {"requestId": hid}}),
        lambda: _line({"jsonrpc": "2.0", "method": rng.choice(
            ["notifications/x", "notifications/roots/list_changed", None, 3])}),
        lambda: _line({"jsonrpc": "2.0", "id": hid, "method": "logging/setLevel",
                       "params": {"level": rng.choice(["loud", 3, None])}}),
        lambda: _line({"jsonrpc": "2.0", "id": hid, "method": "resources/read",
                       "params": {"uri": rng.choice([None, 5, "nope://x", "\u00e9" * 50])}}),
        lambda: _line({"jsonrpc": "2.0", "id": hid, "method": "ping",
                       "params": {"pad": "y" * rng.randrange(1000, 20000)}}),
        lambda: b"   ",
    ]
    data = rng.choice(choices)()
    return data.replace(b"\n", b" ") if newline_free else data


@dataclass
class Batch:
    """One batch: what to send, in order, and the answers the tracked calls expect."""

    messages: list[bytes] = field(default_factory=list)
    #: tracked id -> the text a tool call answers with, or None for a ping (empty result)
    expected: dict[int, str | None] = field(default_factory=dict)
    #: tracked ids whose backend answer is undecodable on purpose: they expect -32603
    failing: set[int] = field(default_factory=set)


def make_batch(rng: random.Random, first_id: int, newline_free: bool,
               backend_noise: bool = False) -> Batch:
    """A batch of :data:`BATCH` messages; tracked ids start at ``first_id``."""
    batch = Batch()
    next_id = first_id
    for n in range(BATCH):
        if rng.random() < 0.4:
            request_id, next_id = next_id, next_id + 1
            if rng.random() < 0.3:
                batch.expected[request_id] = None
                batch.messages.append(_line({"jsonrpc": "2.0", "id": request_id,
                                             "method": "ping"}))
                continue
            text = f"t{request_id}-\u00e9\U0001f600"
            arguments: dict[str, Any] = {"text": text}
            name = "h__echo"
            if backend_noise:
                name = "h__noisy"
                arguments["noise"] = rng.sample(BACKEND_NOISE, rng.randrange(0, 4))
                if rng.random() < 0.1:
                    arguments["noise"].append(rng.choice(["surrogate_answer",
                                                          "bad_utf8_answer"]))
                    batch.failing.add(request_id)
            batch.expected[request_id] = text
            batch.messages.append(_line({"jsonrpc": "2.0", "id": request_id,
                                         "method": "tools/call",
                                         "params": {"name": name, "arguments": arguments}}))
        else:
            batch.messages.append(_hostile(rng, first_id * 1000 + n, newline_free))
    return batch


def check_answers(batch: Batch, answers: list[dict[str, Any]], seed: int) -> None:
    """Every tracked id got exactly one answer, the right one."""
    got: dict[int, list[dict[str, Any]]] = {}
    for answer in answers:
        request_id = answer.get("id")
        if isinstance(request_id, int) and request_id in batch.expected:
            got.setdefault(request_id, []).append(answer)
    for request_id, text in batch.expected.items():
        found = got.get(request_id, [])
        assert len(found) == 1, f"seed {seed}: id {request_id} got {len(found)} answers"
        answer = found[0]
        if request_id in batch.failing:
            assert answer["error"]["code"] == -32603, f"seed {seed}: {answer}"
        elif text is None:
            assert answer.get("result") == {}, f"seed {seed}: {answer}"
        else:
            content = answer.get("result", {}).get("content", [{}])
            assert content[0].get("text") == f"hostile: {text}", f"seed {seed}: {answer}"
