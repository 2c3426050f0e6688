"""The outgoing side of SSE streams: one shared timer for many waits that give up together."""

from __future__ import annotations

import asyncio

import anyio
import pytest
from http_harness import EVENT_TIMEOUT
from vmcp_transport_http.streams import EventStream, SharedTimeout

pytestmark = pytest.mark.anyio


async def test_waits_end_on_a_change_or_give_up_in_order_after_the_delay() -> None:
    timeout = SharedTimeout(0.05)
    quiet, busy, late = (EventStream(str(n), 8) for n in range(3))
    with anyio.fail_after(EVENT_TIMEOUT):
        first = asyncio.ensure_future(timeout.changed(quiet, 0))
        changed = asyncio.ensure_future(timeout.changed(busy, 0))
        await asyncio.sleep(0.02)  # a later deadline than the first wait's
        last = asyncio.ensure_future(timeout.changed(late, 0))
        busy.append({"jsonrpc": "2.0", "id": 1, "result": {}})
        assert await changed is True
        assert await first is False
        assert not last.done()  # its own deadline is later: the timer was set again
        assert await last is False


async def test_a_stream_that_already_changed_is_not_waited_for() -> None:
    stream = EventStream("1", 8)
    stream.finish()
    assert await SharedTimeout(3600.0).changed(stream, 0) is True


async def test_the_waits_look_the_running_loop_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # on Python 3.11 each look-up of the running loop is a getpid system call, and every
    # POST waits here: the front's timeout looks its loop up once for all of them
    lookups = []
    real = asyncio.get_running_loop

    def counted() -> asyncio.AbstractEventLoop:
        lookups.append(1)
        return real()

    monkeypatch.setattr(asyncio, "get_running_loop", counted)
    timeout = SharedTimeout(3600.0)
    for n in range(50):
        stream = EventStream(str(n), 8)
        waited = asyncio.ensure_future(timeout.changed(stream, 0))
        stream.finish()
        assert await waited is True
    assert len(lookups) == 1


def _note(n: int, size: int = 300) -> dict[str, object]:
    return {"jsonrpc": "2.0", "method": "notifications/message", "params": {"n": n,
                                                                            "data": "x" * size}}


def _kept(stream: EventStream) -> list[int]:
    return [seq for seq, _ in stream.events_after(0)]


def test_the_replay_buffer_is_bounded_in_bytes_and_keeps_the_newest_event() -> None:
    stream = EventStream("0", 100, max_bytes=1200)
    for n in range(10):
        stream.append(_note(n))
    assert _kept(stream) == [8, 9, 10]  # three 378-byte events fit in 1,200 bytes
    assert stream.buffered_bytes <= 1200
    stream.append(_note(10, size=5000))  # larger than the bound alone: it stays
    assert _kept(stream) == [11]


def test_a_reply_stream_lets_go_of_delivered_events_only() -> None:
    stream = EventStream("1", 100, max_bytes=1200, trim_undelivered=False)
    for n in range(5):
        stream.append(_note(n))
    assert _kept(stream) == [1, 2, 3, 4, 5]  # nothing reached the client yet: all kept
    stream.mark_delivered(5)
    assert _kept(stream) == [3, 4, 5]


def test_an_unbounded_stream_keeps_everything() -> None:
    stream = EventStream("2", None)
    for n in range(300):
        stream.append(_note(n))
    assert len(_kept(stream)) == 300
    assert stream.lines()[0].endswith(b"\n")
