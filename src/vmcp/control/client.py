"""The CLI side of the control endpoint: a blocking client, one connection per command."""

from __future__ import annotations

import socket
from typing import Any

from vmcp.control.paths import RunPaths
from vmcp.control.protocol import MAX_LINE, ControlError, request, result_of


class NotRunning(Exception):
    """No gateway runs with this home (or its control endpoint does not answer)."""


class ControlClient:
    """Talks to the gateway of one home over its control socket."""

    def __init__(self, paths: RunPaths, timeout: float = 120.0) -> None:
        self.paths = paths
        self.timeout = timeout

    def call(self, op: str, **args: Any) -> Any:
        """Run one operation and return its result.

        :raises NotRunning: nothing listens on the socket.
        :raises ControlError: the gateway refused or failed the operation.
        """
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            try:
                sock.connect(str(self.paths.socket))
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                raise NotRunning(str(exc)) from exc
            sock.sendall(request(op, args))
            with sock.makefile("rb") as stream:
                line = stream.readline(MAX_LINE)
        if not line:
            raise ControlError("the gateway closed the control connection")
        return result_of(line)

