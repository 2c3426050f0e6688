"""The control endpoint of a supervisor (``vmcp start --workers N``).

``vmcp status``, ``mount``, ``reload`` ... reach the supervisor's socket as they reach a
single gateway's. What changes a gateway (mount, unmount, reload, approve) is run by every
worker that is up, so that they stay alike; what only reads or calls (list, info, tools,
lint, call) is answered by the first worker that is up. ``status`` is that worker's, with
the supervisor's pid, the sessions of all workers and a ``workers`` table (pid, state,
restarts); ``stop`` stops the supervisor and with it every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from vmcp.control.protocol import MAX_LINE, MCP_OP, ControlError, request, result_of

if TYPE_CHECKING:
    from vmcp.control.workers import Supervisor, WorkerSlot

log = logging.getLogger("vmcp.control")

#: operations every worker runs (each changes what a gateway serves)
EVERY_WORKER = frozenset(("mount", "unmount", "reload", "approve"))
#: seconds one forwarded operation may take
FORWARD_TIMEOUT = 120.0


async def ask_worker(path: str, op: str, args: dict[str, Any]) -> Any:
    """Run one control operation on the worker whose control socket is ``path``.

    :raises ControlError: it refused or failed the operation, or does not answer.
    """
    try:
        reader, writer = await asyncio.open_unix_connection(path, limit=MAX_LINE)
    except OSError as exc:
        raise ControlError(f"the worker at {path} does not answer: {exc}") from exc
    try:
        writer.write(request(op, args))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), FORWARD_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise ControlError(f"the worker at {path} did not answer: {exc}") from exc
    finally:
        writer.close()
    if not line:
        raise ControlError(f"the worker at {path} closed the control connection")
    return result_of(line)


class SupervisorOperations:
    """Answers the supervisor's control socket (the interface of
    :class:`~vmcp.control.ops.Operations`: ``run(op, args)``)."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def _up(self) -> list[WorkerSlot]:
        up = [slot for slot in self.supervisor.slots if slot.state == "up"]
        if not up:
            raise ControlError("no worker is serving right now (starting or restarting)")
        return up

    def _socket(self, slot: WorkerSlot) -> str:
        return str(self.supervisor.worker_socket(slot.index))

    async def run(self, op: Any, args: Any) -> Any:
        """Run one operation on the workers (see the module docstring).

        :raises ControlError: bad arguments, no worker up, or a worker failed it.
        """
        if not isinstance(args, dict):
            raise ControlError("args must be an object")
        if op == "stop":
            self.supervisor.stop()
            return {"stopping": True, "pid": os.getpid()}
        if op == "status":
            return await self._status(args)
        up = self._up()
        if op in EVERY_WORKER:
            results = await asyncio.gather(
                *(ask_worker(self._socket(slot), op, args) for slot in up),
                return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            return results[0]
        return await ask_worker(self._socket(up[0]), op, args)

    async def serve_mcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        persona: str | None) -> None:
        """Carry the MCP session to the first worker that is up: the same ``mcp`` request
        on its control socket, then the bytes both ways until either end closes."""
        try:
            slot = self._up()[0]
            upstream_reader, upstream_writer = await asyncio.open_unix_connection(
                self._socket(slot), limit=MAX_LINE)
        except (ControlError, OSError) as exc:
            log.warning("vmcp connect: no worker takes the session: %s", exc)
            return
        try:
            upstream_writer.write(request(MCP_OP, {"persona": persona}))
            await upstream_writer.drain()
            await upstream_reader.readline()  # the worker's acknowledgement; ours was sent
            await _pipe_both(reader, writer, upstream_reader, upstream_writer)
        finally:
            upstream_writer.close()

    async def _status(self, args: dict[str, Any]) -> dict[str, Any]:
        supervisor = self.supervisor
        workers = [slot.describe() for slot in supervisor.slots]
        up = [slot for slot in supervisor.slots if slot.state == "up"]
        answers = await asyncio.gather(
            *(ask_worker(self._socket(slot), "status", args) for slot in up),
            return_exceptions=True)
        statuses = {slot.index: answer for slot, answer in zip(up, answers, strict=True)
                    if isinstance(answer, dict)}
        for worker in workers:
            worker["sessions"] = statuses.get(worker["index"], {}).get("sessions")
        if not statuses:  # nothing to show of the gateway itself yet
            return {"running": True, "pid": os.getpid(), "workers": workers,
                    "fronts": [{"name": n, "where": w} for n, w in supervisor.fronts.items()],
                    "sessions": 0, "mounts": [],
                    "shutdown_grace": supervisor.config.gateway.shutdown_grace}
        status = dict(next(iter(statuses.values())))
        status["pid"] = os.getpid()
        status["started"] = supervisor.started
        status["uptime"] = round(time.time() - supervisor.started, 3)
        status["sessions"] = sum(s.get("sessions", 0) for s in statuses.values())
        status["fronts"] = [{"name": n, "where": w} for n, w in supervisor.fronts.items()]
        status["workers"] = workers
        return status


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await source.read(64 * 1024):
            sink.write(data)
            await sink.drain()


async def _pipe_both(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                     worker_reader: asyncio.StreamReader,
                     worker_writer: asyncio.StreamWriter) -> None:
    """Relay bytes between a client and a worker until one of them closes."""
    legs = [asyncio.ensure_future(_pipe(client_reader, worker_writer)),
            asyncio.ensure_future(_pipe(worker_reader, client_writer))]
    try:
        await asyncio.wait(legs, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for leg in legs:
            leg.cancel()
        await asyncio.gather(*legs, return_exceptions=True)
