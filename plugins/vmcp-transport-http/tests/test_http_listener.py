"""The fronts' listener: every connection waiting in the kernel's queue is accepted at once."""

from __future__ import annotations

import asyncio
import select
import socket

import pytest
from vmcp_transport_http.listener import Listener, _bind

pytestmark = pytest.mark.anyio

CROWD = 32


class _Recorder(asyncio.Protocol):
    """Notes, as its connection is made, whether others still wait to be accepted."""

    def __init__(self, listening: socket.socket, made: list[bool], done: asyncio.Event
                 ) -> None:
        self._listening = listening
        self._made = made
        self._done = done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        waiting, _, _ = select.select([self._listening], [], [], 0)
        self._made.append(bool(waiting))
        if len(self._made) == CROWD:
            self._done.set()


async def test_a_crowd_waiting_to_be_accepted_is_taken_in_one_go() -> None:
    [listening] = _bind("127.0.0.1", 0, 128, reuse_port=False)
    made: list[bool] = []
    done = asyncio.Event()
    clients = []
    try:
        port = listening.getsockname()[1]
        for _ in range(CROWD):  # the kernel completes each handshake: all wait in its queue
            clients.append(socket.create_connection(("127.0.0.1", port)))
        listener = Listener([listening], lambda: _Recorder(listening, made, done), 128)
        await asyncio.wait_for(done.wait(), 10)
        assert made == [False] * CROWD  # by the first connection made, none was left waiting
        listener.close()
        assert listening.fileno() == -1
    finally:
        listening.close()
        for client in clients:
            client.close()
