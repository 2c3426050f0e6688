"""A JSON reply read as it arrives (``json_lines``): one message, or a line per message."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from vmcp_transport_http.json_lines import JsonLinesError, iter_json_messages

pytestmark = pytest.mark.anyio


async def _chunks(parts: Sequence[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _values(parts: Sequence[bytes], limit: int = 1 << 20) -> list[Any]:
    return [value async for value in iter_json_messages(_chunks(parts), limit)]


async def test_one_message_without_a_newline() -> None:
    assert await _values([b'{"jsonrpc":"2.0",', b'"id":1,"result":{}}']) == [
        {"jsonrpc": "2.0", "id": 1, "result": {}}]


async def test_a_line_per_message_each_as_soon_as_it_is_complete() -> None:
    first = b'{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n'
    seen: list[Any] = []

    async def parts() -> AsyncIterator[bytes]:
        yield first[:20]
        yield first[20:]
        assert len(seen) == 1  # delivered before the rest of the body arrives
        yield b'{"jsonrpc":"2.0","id":7,"result":{"ok":true}}'

    async for value in iter_json_messages(parts(), 1 << 20):
        seen.append(value)
    assert [value.get("method") or value["id"] for value in seen] == [
        "notifications/progress", 7]


async def test_a_pretty_printed_message_is_one_message() -> None:
    body = b'{\n  "jsonrpc": "2.0",\n  "id": 1,\n  "result": {\n    "a": {}\n  }\n}\n'
    assert await _values([body]) == [{"jsonrpc": "2.0", "id": 1, "result": {"a": {}}}]


async def test_a_line_that_is_no_json_comes_as_its_bytes() -> None:
    values = await _values([b'not json}\n{"jsonrpc":"2.0","id":2,"result":{}}\n'])
    assert values == [b"not json}\n", {"jsonrpc": "2.0", "id": 2, "result": {}}]


async def test_a_body_that_breaks_off_inside_a_message_is_an_error() -> None:
    with pytest.raises(JsonLinesError, match="ended inside"):
        await _values([b'{"jsonrpc":"2.0","id":1,"res'])


async def test_a_message_beyond_the_limit_is_an_error() -> None:
    with pytest.raises(JsonLinesError, match="larger than 64 bytes"):
        await _values([b'{"jsonrpc":"2.0","id":1,"result":{"text":"' + b"x" * 100, b'"}}'],
                      limit=64)
