"""The stdio front taking over from the fast start (:mod:`vmcp.faststart`).

The fast start answered the client's first requests from the front snapshot and handed over
every byte it read. The front replays them through the session in order, so the session
negotiates and is initialized as if it had read them itself; :class:`ReplayPeer` drops the
answers the client already has. Where the gateway's own answer to the ``tools/list`` the
client was shown differs from the snapshot's, the client is told
``notifications/tools/list_changed``, so it fetches the list the gateway really serves.
"""

from __future__ import annotations

import logging
from typing import Any

from vmcp.faststart import Handover
from vmcp.protocol import jsonrpc
from vmcp.transports.base import FrontPeer, JsonMessage

log = logging.getLogger("vmcp.transports.stdio")


class ReplayPeer:
    """The stdio client's peer, dropping the answers the fast start gave already."""

    __slots__ = ("_answered", "peer")

    def __init__(self, peer: FrontPeer, handover: Handover) -> None:
        self.peer = peer
        self._answered = dict(handover.answered)
        log.info("answered %s from the front snapshot", ", ".join(
            method for method, _ in self._answered.values()) or "nothing")

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Send ``message`` to the client unless it answers what was answered already."""
        if self._answered and "method" not in message:
            request_id = message.get("id")
            if type(request_id) in (int, str) and request_id in self._answered:
                method, shown = self._answered.pop(request_id)
                if message.get("result") != shown:
                    self._differs(method)
                return
        self.peer.send(message, related_to)

    def _differs(self, method: str) -> None:
        if method == "tools/list":
            log.info("the tools listed from the front snapshot differ from the gateway's: "
                     "the client is told the list changed")
            self.peer.send(jsonrpc.notification("notifications/tools/list_changed"))
        elif method == "initialize":
            log.warning("the initialize result given from the front snapshot differs from "
                        "the gateway's")
