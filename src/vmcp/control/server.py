"""The control endpoint: a Unix socket in ``run/``, owner-only, served by the running gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any, Protocol

from vmcp.control.protocol import MAX_LINE, MCP_OP, ControlError, failure, success

log = logging.getLogger("vmcp.control")


class OperationRunner(Protocol):
    """What answers control requests: a gateway's :class:`~vmcp.control.ops.Operations`,
    or a supervisor's operations that forward to its workers."""

    async def run(self, op: Any, args: Any) -> Any:
        """Run one operation; raise ``ControlError`` to refuse or report a failure."""

    async def serve_mcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        persona: str | None) -> None:
        """Carry an MCP session on the connection (see :mod:`vmcp.control.mcpsocket`)."""


class ControlServer:
    """Accepts control connections and answers each request line with one response line."""

    def __init__(self, path: Path, operations: OperationRunner) -> None:
        self.path = path
        self.operations = operations
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen (replacing a socket file a dead gateway left); only the owner may connect.

        The caller holds the instance lock, so a socket file already there is stale. ``run/``
        is owner-only, so nobody else can reach the socket before its mode is set.
        """
        self.path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, str(self.path),
                                                       limit=MAX_LINE)
        self.path.chmod(0o600)
        log.info("control endpoint on %s", self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while line := await reader.readline():
                try:
                    message = json.loads(line)
                except ValueError as exc:
                    message = ControlError(f"not JSON: {exc}")
                if isinstance(message, dict) and message.get("op") == MCP_OP:
                    persona = (message.get("args") or {}).get("persona")
                    if persona is not None and not isinstance(persona, str):
                        writer.write(failure(ControlError("persona must be a string")))
                        continue
                    # From here on the connection is an MCP session, not control requests.
                    writer.write(success({"session": True}))
                    await self.operations.serve_mcp(reader, writer, persona)
                    return
                writer.write(await self._answer(message))
                await writer.drain()
        except (ConnectionError, ValueError):  # ValueError: a line over the limit
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _answer(self, message: object) -> bytes:
        if isinstance(message, ControlError):
            return failure(message)
        if not isinstance(message, dict):
            return failure(ControlError("a request is a JSON object"))
        try:
            return success(await self.operations.run(message.get("op"), message.get("args", {})))
        except ControlError as exc:
            return failure(exc)
        except Exception as exc:
            log.exception("control operation failed")
            return failure(ControlError(f"internal error: {exc}"))

    async def aclose(self) -> None:
        """Stop listening, drop open control connections and remove the socket."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
        self.path.unlink(missing_ok=True)
