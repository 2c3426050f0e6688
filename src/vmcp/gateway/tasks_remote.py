"""Handshake-era tasks of a session that several instances serve (``[cluster]`` only).

A task is known to the backend connection of the instance whose ``tools/call`` created it,
and its id names that instance (``<instance>.<mount>.<random>``). ``tasks/get``,
``tasks/result`` and ``tasks/cancel`` that reach another instance are forwarded to the
owner (:mod:`vmcp.gateway.remote`), which serves them as its own if the task belongs to the
same session, and sends back what the backend answers. ``tasks/result`` waits for the task
as long as it takes, on both sides; withdrawn by its client, it is withdrawn on the owner.
``tasks/list`` asks every live instance for the session's tasks and answers with what came
back within the request timeout.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from vmcp.cluster.record import instance_of
from vmcp.gateway.remote import Remote, Reply, answer_of
from vmcp.protocol import jsonrpc
from vmcp.protocol.errors import BACKEND_UNAVAILABLE, INVALID_PARAMS, RpcError
from vmcp.routing.request import HANDSHAKE, Request

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway
    from vmcp.gateway.session import FrontSession
    from vmcp.registry.mount import Replica
    from vmcp.transports.base import JsonMessage
    from vmcp.upstream.session import UpstreamSession

log = logging.getLogger("vmcp.gateway")

#: the kinds of a forwarded task request and of a forwarded ``tasks/list``
TASK = "task"
TASKS_LIST = "tasks-list"


class _ForSession:
    """The sink, on the owner, of a task request another instance forwarded: what the
    backend sends for it goes back there; what the backend asks goes to the session."""

    __slots__ = ("_held", "affinity", "closed", "inflight", "reply", "session", "tasks")

    def __init__(self, reply: Reply, session: FrontSession) -> None:
        self.reply = reply
        self.session = session
        self.closed = False
        self.inflight: dict[Any, tuple[UpstreamSession, int, int | None]] = {}
        self.tasks: dict[Any, asyncio.Task[None]] = {}
        self.affinity: dict[str, Replica] = {}
        # this copy of the session (and with it the tasks it holds) must not expire while
        # the client waits elsewhere for the answer: a tasks/result may wait for long
        self._held = session.hold() if session.hold is not None else None
        if self._held is not None:
            self._held.__enter__()

    def release(self) -> None:
        """The request is over: this copy of the session may idle again (from now)."""
        held, self._held = self._held, None
        if held is not None:
            held.__exit__(None, None, None)

    def send(self, message: JsonMessage, related_to: Any = None) -> None:
        """Publish a notification of the request (progress, a log line) to its instance."""
        self.reply.send(message)

    def deliver(self, request: Request, message: JsonMessage) -> None:
        """Publish the backend's response to the request's instance."""
        self.release()
        self.reply.send(message)

    def fail(self, request_id: Any, err: RpcError) -> None:
        """Publish an error response to the request's instance."""
        self.release()
        self.reply.send(jsonrpc.error(request_id, err))

    def relay_request(self, request: Request | None, upstream: UpstreamSession,
                      message: JsonMessage) -> None:
        """The backend asked the client something: the session asks it (on its shared
        stream, which reaches the client wherever it listens)."""
        self.session.relay_request(None, upstream, message)


class RemoteTasks:
    """Both sides of the task requests forwarded between instances."""

    def __init__(self, gateway: Gateway, remote: Remote) -> None:
        self.gateway = gateway
        self.remote = remote
        remote.serve(TASK, self._serve)
        remote.serve(TASKS_LIST, self._list)

    def owner(self, task_id: Any) -> str | None:
        """The other instance that holds task ``task_id``, or None when it would be this
        one's (known here, or naming no instance)."""
        if not isinstance(task_id, str) or task_id in self.gateway.tasks:
            return None
        owner = instance_of(task_id)
        return owner if owner != self.remote.instance else None

    # -- the asking instance --------------------------------------------------------------

    def forward(self, request: Request, shared_id: str, owner: str, method: str,
                params: dict[str, Any]) -> None:
        """Serve a task request of the shared session ``shared_id`` on the instance that
        holds the task."""
        request.spawn(self._forwarded(request, shared_id, owner, method, params))

    async def _forwarded(self, request: Request, shared_id: str, owner: str, method: str,
                         params: dict[str, Any]) -> dict[str, Any]:
        task_id = params.get("taskId")
        settings = self.gateway.config.gateway
        # the owner applies the backend's timeout; this one only outlasts it
        timeout = None if method == "tasks/result" else 2 * settings.request_timeout
        body = {"id": request.id, "session": shared_id, "method": method, "params": params}
        log.debug("task %s: %s sent to instance %s, which holds it", task_id, method, owner)
        answer = await self.remote.call(
            owner, TASK, body, timeout=timeout,
            gone=RpcError(INVALID_PARAMS, f"Unknown task: {task_id} was held by gateway "
                          f"instance {owner!r}, which is gone; the task was lost with it"),
            lost=RpcError(BACKEND_UNAVAILABLE, f"gateway instance {owner!r}, which held task "
                          f"{task_id}, went away; the task was lost with it"),
            on_message=lambda message: request.sink.send(message, request.id))
        return answer_of(answer)

    async def list_everywhere(self, session_id: str, shared_id: str, cursor: Any
                              ) -> dict[str, Any]:
        """The tasks of a shared session (``session_id`` here) on every live instance (an
        instance gone, or silent for the request timeout, adds none)."""
        listed = (await self.gateway.list_tasks(session_id, cursor))["tasks"]
        try:
            others = [info.instance for info in await self.remote.state.instances()
                      if info.instance != self.remote.instance]
        except Exception as exc:
            log.warning("tasks/list: only this instance's tasks (shared state: %s)", exc)
            others = []
        timeout = self.gateway.config.gateway.request_timeout
        for tasks in await asyncio.gather(*(self._listed_on(other, shared_id, timeout)
                                            for other in others)):
            listed.extend(tasks)
        return {"tasks": listed}

    async def _listed_on(self, instance: str, shared_id: str, timeout: float
                         ) -> list[dict[str, Any]]:
        unavailable = RpcError(BACKEND_UNAVAILABLE, f"gateway instance {instance!r} is gone")
        try:
            answer = answer_of(await self.remote.call(
                instance, TASKS_LIST, {"session": shared_id}, timeout=timeout,
                gone=unavailable, lost=unavailable))
        except RpcError as exc:
            log.info("tasks/list: no tasks from instance %s (%s)", instance, exc.message)
            return []
        tasks = answer.get("tasks")
        return [task for task in tasks if isinstance(task, dict)] if isinstance(tasks, list) else []

    # -- the owner ------------------------------------------------------------------------

    def _session(self, message: dict[str, Any]) -> FrontSession | None:
        """This instance's copy of the shared session a forwarded request names."""
        shared_id = message.get("session")
        if not isinstance(shared_id, str):
            return None
        return self.gateway.shared_sessions.get(shared_id)

    def _serve(self, message: dict[str, Any], reply: Reply) -> None:
        """A task request another instance forwarded: serve it for the same session."""
        method, params = message.get("method"), message.get("params")
        if method not in _TASK_METHODS or not isinstance(params, dict):
            raise RpcError(INVALID_PARAMS, "Invalid forwarded task request")
        session = self._session(message)
        if session is None:  # its tasks here ended with its copy on this instance
            raise RpcError(INVALID_PARAMS, f"Unknown task: {params.get('taskId')}")
        sink = _ForSession(reply, session)
        request = Request(message.get("id"), session.caller, sink, HANDSHAKE,
                          session.client_capabilities, session.log_rank)
        def withdraw(why: str) -> None:
            sink.release()
            self.gateway.router.cancel(sink, request.id, why)

        reply.on_withdraw(withdraw)
        log.info("serving %s of task %s for a request on instance %s", method,
                 params.get("taskId"), reply.to)
        try:
            self.gateway.serve_task(request, str(method), params)
        except BaseException:
            sink.release()
            raise

    def _list(self, message: dict[str, Any], reply: Reply) -> None:
        """Another instance lists a session's tasks: those held here."""
        session = self._session(message)
        if session is None:
            reply.send(jsonrpc.result(None, {"tasks": []}))
            return
        session_id = session.session_id

        async def listed() -> None:
            try:
                result = await self.gateway.list_tasks(session_id, None)
            except RpcError as exc:
                reply.send(jsonrpc.error(None, exc))
                return
            reply.send(jsonrpc.result(None, result))

        self.gateway.spawn(listed())


_TASK_METHODS = frozenset(("tasks/get", "tasks/result", "tasks/cancel"))
