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
