"""The SSE writer and the incremental parser agree, whatever the chunking and line endings."""

from __future__ import annotations

import pytest
from vmcp_transport_http.sse import EventTooLarge, ServerSentEvent, SseParser, encode_event


def feed_bytewise(data: bytes, limit: int = 1 << 20) -> list[ServerSentEvent]:
    parser = SseParser(limit)
    events: list[ServerSentEvent] = []
    for index in range(len(data)):
        events += parser.feed(data[index : index + 1])
    return events


def test_round_trip_in_any_chunking() -> None:
    data = encode_event('{"a":"x\u2028y"}', event_id="3-7") + encode_event("two\nlines")
    expected = [
        ServerSentEvent(data='{"a":"x\u2028y"}', id="3-7"),
        ServerSentEvent(data="two\nlines"),
    ]
    assert SseParser(1 << 20).feed(data) == expected
    assert feed_bytewise(data) == expected


def test_line_endings_comments_bom_and_fields() -> None:
    data = (
        "\ufeff: comment\r\nevent: endpoint\r\ndata: /messages?session_id=1\r\n\r\n"
        "retry: 2500\rid: 9\rdata:\r\r"
        "data: no final blank line"
    ).encode()
    assert feed_bytewise(data) == [
        ServerSentEvent(event="endpoint", data="/messages?session_id=1"),
        ServerSentEvent(data="", id="9", retry=2500),
    ]


def test_priming_event_has_an_id_a_retry_delay_and_no_data() -> None:
    assert SseParser(1024).feed(encode_event("", event_id="1-0", retry=1000)) == [
        ServerSentEvent(data="", id="1-0", retry=1000)
    ]


def test_an_oversized_event_is_refused() -> None:
    parser = SseParser(1024)
    with pytest.raises(EventTooLarge):
        parser.feed(b"data: " + b"x" * 2000)
