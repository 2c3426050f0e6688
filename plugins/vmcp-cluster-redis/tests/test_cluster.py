"""Three gateway processes behind HAProxy (plain round robin, no stickiness) sharing Redis.

Driven by the official SDK client through the load balancer (and, where a test must pick
the instance, straight at one). The module's processes start once and are ended at its
end; the kill -9 test comes last, since it leaves one instance dead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp.types as types
import pytest
from cluster_harness import Cluster, Gateway, Workers, haproxy_path
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pydantic import TypeAdapter

from vmcp.cluster import list_instances
from vmcp.config import VmcpConfig

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

BOTH = "application/json, text/event-stream"
VERSION = "2025-06-18"
MODERN = "2026-07-28"
#: seconds one step of a test may take
STEP = 20.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """redis-server, a backend, three gateways and HAProxy, for the whole module."""
    haproxy = haproxy_path()
    if shutil.which("redis-server") is None or haproxy is None:
        pytest.skip("redis-server and haproxy are needed (apt-get install redis-server haproxy)")
    running = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        running.start(haproxy)
        yield running
    finally:
        running.stop()


class Caller:
    """One client's callbacks, each answering with the caller's own name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.logs: list[str] = []

    async def sampling(self, context: Any, params: types.CreateMessageRequestParams) -> Any:
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=self.name), model="m")

    async def elicitation(self, context: Any, params: types.ElicitRequestParams) -> Any:
        return types.ElicitResult(action="accept", content={"name": self.name})

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(str(params.data))


@asynccontextmanager
async def connect(url: str, caller: Caller | None = None,
                  transport: httpx2.AsyncBaseTransport | None = None,
                  ) -> AsyncIterator[ClientSession]:
    """An initialized SDK session over Streamable HTTP (its HTTP through ``transport``)."""
    caller = caller or Caller("anyone")
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx2.AsyncClient(
            timeout=httpx2.Timeout(30), transport=transport))
        read, write = await stack.enter_async_context(streamable_http_client(url, http_client=http))
        session = await stack.enter_async_context(ClientSession(
            read, write, sampling_callback=caller.sampling,
            elicitation_callback=caller.elicitation, logging_callback=caller.logging))
        with anyio.fail_after(STEP):
            await session.initialize()
        yield session


class Steer(httpx2.AsyncBaseTransport):
    """Sends each HTTP request of one client to the instance chosen at the time (``to``),
    so that a test picks the instance serving each request of one SDK session."""

    def __init__(self, to: Gateway, streams: Gateway | None = None) -> None:
        self.to = to
        #: where the session's GET streams go, if not to ``to`` (the SDK opens one when it
        #: likes, and the instance serving it keeps its copy of the session busy)
        self.streams = streams
        #: the session's headers (its id, once answered; the protocol version, once sent)
        self.headers: dict[str, str] = {}
        self._http = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if "mcp-protocol-version" in request.headers:
            self.headers["mcp-protocol-version"] = request.headers["mcp-protocol-version"]
        to = self.streams if request.method == "GET" and self.streams is not None else self.to
        target = httpx2.URL(to.url)
        request.url = request.url.copy_with(host=target.host, port=target.port)
        request.headers["Host"] = to.address
        response = await self._http.handle_async_request(request)
        if "mcp-session-id" in response.headers:
            self.headers["mcp-session-id"] = response.headers["mcp-session-id"]
        return response

    async def aclose(self) -> None:
        await self._http.aclose()


def text_of(result: types.CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, types.TextContent), result
    return content.text


#: the SDK request model of each task method (handshake era, 2025-11-25)
TASK_REQUESTS: dict[str, Any] = {
    "tasks/get": types.GetTaskRequest,
    "tasks/result": types.GetTaskPayloadRequest,
    "tasks/cancel": types.CancelTaskRequest,
    "tasks/list": types.ListTasksRequest,
}
RAW = TypeAdapter(dict[str, Any])


async def start_task(steer: Steer, name: str) -> str:
    """Call the tasker's ``work`` as a task (finished by ``tk__finish`` with ``name``) in
    the SDK session ``steer`` carries, to the instance it points at; the task id. Sent by
    hand: the SDK client takes every ``tools/call`` result for a CallToolResult, which a
    CreateTaskResult is not."""
    call = {"jsonrpc": "2.0", "id": f"task-{name}", "method": "tools/call", "params": {
        "name": "tk__work", "arguments": {"name": name}, "task": {"ttl": 60000}}}
    headers = {**steer.headers, "Accept": BOTH, "Content-Type": "application/json"}
    async with httpx2.AsyncClient(timeout=STEP) as http:
        answer = await http.post(steer.to.url, headers=headers, json=call)
    assert answer.status_code == 200, answer.text
    (message,) = [data for data in _replies(answer) if data.get("id") == call["id"]]
    return types.CreateTaskResult.model_validate(message["result"]).task.task_id


async def task_request(session: ClientSession, method: str, params: dict[str, Any]
                       ) -> dict[str, Any]:
    """Send a ``tasks/*`` request; its result."""
    request = TASK_REQUESTS[method].model_validate({"method": method, "params": params})
    with anyio.fail_after(STEP):
        return await session.send_request(request, RAW)


async def _logged(gateway: Gateway, text: str) -> None:
    """Return once ``gateway`` logged a line containing ``text``."""
    await anyio.to_thread.run_sync(gateway.wait_logged, text, STEP)


def _config(cluster: Cluster) -> VmcpConfig:
    return VmcpConfig(cluster={"redis_url": cluster.redis.url, "key_prefix": cluster.prefix})


async def _ready(cluster: Cluster) -> list[tuple[int, str]]:
    async with httpx2.AsyncClient(timeout=5) as http:
        answers = [await http.get(g.base + "/readyz") for g in cluster.gateways if g.alive]
    return [(answer.status_code, answer.text) for answer in answers]


async def _until_ready(cluster: Cluster, status: int) -> list[tuple[int, str]]:
    """Poll every live instance's /readyz until all answer ``status`` (the state changes
    with the next heartbeat, every 0.3 s)."""
    with anyio.fail_after(STEP):
        while True:
            answers = await _ready(cluster)
            if all(code == status for code, _ in answers):
                return answers
            await anyio.sleep(0.1)


async def thirty_in_batches_of_ten(client: Callable[[int], Awaitable[None]]) -> None:
    """Run ``client(0)`` to ``client(29)``, ten at a time."""
    with anyio.fail_after(STEP * 3):
        for batch in range(3):
            async with anyio.create_task_group() as group:
                for n in range(batch * 10, batch * 10 + 10):
                    group.start_soon(client, n)


async def test_thirty_handshake_sessions_complete_under_plain_round_robin(
    cluster: Cluster,
) -> None:
    before = [g.taken_up() for g in cluster.gateways]
    done: list[int] = []

    async def one(n: int) -> None:
        async with connect(cluster.lb_url) as session:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert {"fx__add", "fx__echo"} <= tools
            for k in range(3):
                assert text_of(await session.call_tool("fx__add", {"a": n, "b": k})) == str(n + k)
            assert text_of(await session.call_tool("fx__echo", {"text": str(n)})) == f"echo: {n}"
        done.append(n)

    await thirty_in_batches_of_ten(one)
    assert sorted(done) == list(range(30))
    # with no stickiness every instance served sessions another one opened
    assert all(g.taken_up() > seen for g, seen in zip(cluster.gateways, before, strict=True))
    assert [info.instance for info in await list_instances(_config(cluster))] == ["g1", "g2", "g3"]
    # vmcp status of one instance shows the cluster: itself, the store, every instance
    shown = await anyio.to_thread.run_sync(cluster.gateways[1].vmcp, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)["cluster"]
    assert status["instance"] == "g2" and status["problem"] is None
    assert [i["instance"] for i in status["instances"]] == ["g1", "g2", "g3"]
    text = await anyio.to_thread.run_sync(cluster.gateways[1].vmcp, "status")
    assert "cluster:  instance g2, shared state up" in text.stdout
    assert "g2 (this)" in text.stdout


async def test_thirty_modern_clients_complete_under_plain_round_robin(cluster: Cluster) -> None:
    """2026-07-28 clients need no session at all: each request may reach any instance."""
    done: list[int] = []

    async def one(n: int) -> None:
        async with Client(cluster.lb_url, mode=MODERN) as client:
            assert client.protocol_version == MODERN
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert {"fx__add", "fx__echo"} <= tools
            for k in range(3):
                assert text_of(await client.call_tool("fx__add", {"a": n, "b": k})) == str(n + k)
        done.append(n)

    await thirty_in_batches_of_ten(one)
    assert sorted(done) == list(range(30))


async def test_server_requests_logs_and_progress_reach_the_right_client_across_instances(
    cluster: Cluster,
) -> None:
    a, b = Caller("A"), Caller("B")
    answers: dict[str, Any] = {}

    async def ask(caller: Caller, session: ClientSession) -> None:
        await session.set_logging_level("debug")
        # the backend waits until both calls are in, then logs, samples and elicits for each;
        # each client's answers go to whichever instance HAProxy picks next
        result = await session.call_tool("fx__ask", {"who": caller.name, "together": 2})
        assert not result.is_error, result
        answers[caller.name] = json.loads(text_of(result))

    with anyio.fail_after(STEP * 2):
        async with connect(cluster.lb_url, a) as first, connect(cluster.lb_url, b) as second:
            async with anyio.create_task_group() as group:
                group.start_soon(ask, a, first)
                group.start_soon(ask, b, second)
            sampled = await first.call_tool("fx__sample", {"prompt": "again"})
            assert text_of(sampled) == "sampled: A"
            progress: dict[str, list[float]] = {"A": [], "B": []}

            async def slow(name: str, session: ClientSession, steps: int) -> None:
                async def on_progress(value: float, total: float | None, _: str | None) -> None:
                    progress[name].append(value)

                result = await session.call_tool("fx__slow", {"steps": steps},
                                                 progress_callback=on_progress)
                assert text_of(result) == f"done {steps}"

            async with anyio.create_task_group() as group:
                group.start_soon(slow, "A", first, 2)
                group.start_soon(slow, "B", second, 3)
    for name in "AB":
        assert answers[name]["sampling"] == name
        assert answers[name]["elicitation"] == name
    assert progress == {"A": [1, 2], "B": [1, 2, 3]}
    assert a.logs == ["log for A", "did step 1", "did step 2"]
    assert b.logs == ["log for B", "did step 1", "did step 2", "did step 3"]


async def test_a_modern_retry_with_input_reaches_the_instance_whose_call_waits(
    cluster: Cluster,
) -> None:
    """A 2026-07-28 client through plain round robin: the backend (handshake era) samples,
    elicits and lists roots, one ``input_required`` round each; every retry lands on
    another instance than the one whose backend call waits for it, which gets it there."""
    caller = Caller("M")
    before = sum(g.resumed_for_others() for g in cluster.gateways)
    with anyio.fail_after(STEP * 2):
        async with Client(cluster.lb_url, mode=MODERN, sampling_callback=caller.sampling,
                          elicitation_callback=caller.elicitation) as client:
            for _ in range(2):
                result = await client.call_tool("fx__ask", {"who": "M", "together": 1})
                assert not result.is_error, result
                answers = json.loads(text_of(result))
                assert answers["sampling"] == "M" and answers["elicitation"] == "M"
                # the client declared no roots: the gateway refuses that one for it
                assert answers["roots"].startswith("refused:")
    assert sum(g.resumed_for_others() for g in cluster.gateways) - before >= 2


async def test_a_retry_withdrawn_on_another_instance_cancels_the_call_where_it_waits(
    cluster: Cluster,
) -> None:
    """The retry reaches g2 while the call waits on g1; its client goes away while the
    resumed call runs on g1: g1 cancels it (the backend hears notifications/cancelled)."""
    g1, g2 = cluster.gateways[0].url, cluster.gateways[1].url
    tool, key, caps = "fx__elicit_then_block", "withdrawn", {"elicitation": {}}
    async with httpx2.AsyncClient(timeout=STEP) as http:
        with anyio.fail_after(STEP):
            first = await http.post(g1, headers=_modern_headers(tool), json=_modern_call(
                1, tool, {"key": key}, {}, caps))
            result = first.json()["result"]
            assert result["resultType"] == "input_required", result
            (ask,) = result["inputRequests"]
            retry = _modern_call(2, tool, {"key": key}, {
                "requestState": result["requestState"],
                "inputResponses": {ask: {"action": "accept", "content": {"name": "n"}}}}, caps)
            async with http.stream("POST", g2, json=retry,
                                   headers=_modern_headers(tool, BOTH)) as stream:
                assert stream.status_code == 200  # started: the call runs on g1 now
                assert stream.headers["content-type"].startswith("text/event-stream")
        async with Client(cluster.lb_url, mode=MODERN) as client:
            with anyio.fail_after(STEP):  # g2 notices at its next keep-alive (1 s)
                done = await client.call_tool("fx__was_cancelled", {"key": key})
    assert text_of(done) == f"{key} cancelled"
    assert any("its retry on another instance was withdrawn" in line
               for line in cluster.gateways[0].lines)


def _events(text: str) -> list[tuple[str | None, dict[str, Any]]]:
    """The (id, message) of each SSE event in ``text`` that carries data."""
    found = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if fields.get("data"):
            found.append((fields.get("id"), json.loads(fields["data"])))
    return found


def _replies(answer: httpx2.Response) -> list[dict[str, Any]]:
    """The messages of a POST's reply: its one JSON body, or its SSE events' data."""
    if answer.headers["content-type"].startswith("application/json"):
        return [answer.json()]
    return [data for _, data in _events(answer.text)]


async def _next_event(stream: httpx2.Response) -> tuple[str, dict[str, Any]]:
    """Read a GET stream up to its next message event."""
    block = ""
    async for line in stream.aiter_lines():
        if line:
            block += line + "\n"
            continue
        events = _events(block)
        block = ""
        if events and events[0][0] is not None:
            return events[0]  # type: ignore[return-value]
    raise AssertionError("the stream ended")


async def _open_raw(http: httpx2.AsyncClient, url: str, then: str | None = None) -> dict[str, str]:
    """Initialize a session at ``url`` by hand (``notifications/initialized`` at ``then``);
    the headers of its later requests."""
    json_headers = {"Accept": BOTH, "Content-Type": "application/json"}
    client_info = {"name": "raw", "version": "1"}
    opened = await http.post(url, headers=json_headers, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": VERSION, "capabilities": {}, "clientInfo": client_info}})
    assert opened.status_code == 200
    session_id = opened.headers["mcp-session-id"]
    headers = {**json_headers, "Mcp-Session-Id": session_id, "MCP-Protocol-Version": VERSION}
    notified = await http.post(then or url, headers=headers, json={
        "jsonrpc": "2.0", "method": "notifications/initialized"})
    assert notified.status_code == 202
    return headers


async def test_the_get_stream_resumes_with_last_event_id_on_another_instance(
    cluster: Cluster,
) -> None:
    g1, g2, g3 = (g.url for g in cluster.gateways)
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(STEP)) as http:
        headers = await _open_raw(http, g1, g2)
        session_id = headers["Mcp-Session-Id"]
        assert session_id.startswith("g1.")  # the id names its instance

        async def grow(n: int) -> None:
            grown = await http.post(g2, headers=headers, json={
                "jsonrpc": "2.0", "id": 10 + n, "method": "tools/call",
                "params": {"name": "fx__grow", "arguments": {"name": f"t{n}_{session_id[-6:]}"}}})
            assert grown.status_code == 200 and "error" not in _replies(grown)[-1]

        stream_headers = {**headers, "Accept": "text/event-stream"}
        with anyio.fail_after(STEP):
            async with http.stream("GET", g3, headers=stream_headers) as first:
                assert first.status_code == 200
                await grow(1)  # g2's backend changed: its list_changed goes on the GET stream
                first_id, note = await _next_event(first)
            assert note["method"] == "notifications/tools/list_changed"
            assert first_id.startswith("r")
            await grow(2)  # while no stream is open
            resumed_headers = {**stream_headers, "Last-Event-ID": first_id}
            async with http.stream("GET", g1, headers=resumed_headers) as resumed:
                assert resumed.status_code == 200
                second_id, again = await _next_event(resumed)
        assert again["method"] == "notifications/tools/list_changed"
        assert second_id > first_id  # the event after the one named, not a replay
        ended = await http.delete(g3, headers=headers)
        assert ended.status_code == 200
        gone = await http.post(g1, headers=headers, json={"jsonrpc": "2.0", "id": 3,
                                                          "method": "ping"})
        assert gone.status_code == 404  # DELETE ended it everywhere


async def test_a_post_reply_stream_resumes_with_last_event_id_on_another_instance(
    cluster: Cluster,
) -> None:
    """A call's reply stream breaks on g1 while the call runs; the client resumes it with a
    GET on g2, which has g1 replay it after the event named: the call's result arrives."""
    g1, g2 = cluster.gateways[0].url, cluster.gateways[1].url
    key = "resumed-post"
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(STEP)) as http:
        headers = await _open_raw(http, g1)
        # a client of 2025-11-25 gets a priming event (an id to resume from) at once
        newer = {**headers, "MCP-Protocol-Version": "2025-11-25"}
        with anyio.fail_after(STEP):
            async with http.stream("POST", g1, headers=newer, json={
                    "jsonrpc": "2.0", "id": 7, "method": "tools/call",
                    "params": {"name": "fx__hold_write", "arguments": {"key": key}}}) as post:
                async for line in post.aiter_lines():
                    if line.startswith("id: "):
                        primed = line.removeprefix("id: ")
                        break
            assert primed.startswith("g1~")  # the stream names its instance
            released = await http.post(g2, headers=headers, json={
                "jsonrpc": "2.0", "id": 8, "method": "tools/call",
                "params": {"name": "fx__let_go", "arguments": {"key": key}}})
            assert released.status_code == 200
            resumed_headers = {**newer, "Accept": "text/event-stream", "Last-Event-ID": primed}
            async with http.stream("GET", g2, headers=resumed_headers) as resumed:
                assert resumed.status_code == 200
                event_id, message = await _next_event(resumed)
        assert event_id.startswith("g1~") and event_id > primed
        assert message["id"] == 7
        assert message["result"]["content"][0]["text"] == f"held {key}"
        assert (await http.delete(g1, headers=headers)).status_code == 200


async def test_the_instance_holding_the_get_stream_follows_the_subscriptions(
    cluster: Cluster,
) -> None:
    g1, g2, g3 = (g.url for g in cluster.gateways)
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(STEP)) as http:
        headers = await _open_raw(http, g1)

        async def call(url: str, n: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
            answer = await http.post(url, headers=headers, json={
                "jsonrpc": "2.0", "id": n, "method": method, "params": params})
            assert answer.status_code == 200, answer.text
            message = _replies(answer)[-1]
            assert "error" not in message, message
            return message["result"]  # type: ignore[no-any-return]

        await call(g2, 2, "resources/subscribe", {"uri": "alpha://counter"})  # g2's backend
        stream_headers = {**headers, "Accept": "text/event-stream"}
        touch = {"name": "al__touch", "arguments": {"uri": "alpha://counter"}}
        with anyio.fail_after(STEP):
            async with http.stream("GET", g3, headers=stream_headers) as stream:
                assert stream.status_code == 200
                # g3 took the session up from its record, and subscribes its own backend
                # (in the background: its next tools/call may come first)
                n = 10
                while not (await call(g3, n, "tools/call", touch))["structuredContent"][
                        "subscribed"]:
                    n += 1
                _, updated = await _next_event(stream)
        assert updated["method"] == "notifications/resources/updated"
        assert updated["params"]["uri"] == "alpha://counter"
        assert (await http.delete(g1, headers=headers)).status_code == 200


async def test_losing_redis_is_reported_and_recovered_without_a_restart(
    cluster: Cluster,
) -> None:
    assert await _until_ready(cluster, 200)
    async with connect(cluster.gateways[0].url) as own:
        cluster.redis.stop()
        try:
            answers = await _until_ready(cluster, 503)
            assert all("Redis unreachable" in body for _, body in answers)
            with anyio.fail_after(STEP):  # the sessions an instance holds are still served
                assert text_of(await own.call_tool("fx__add", {"a": 2, "b": 2})) == "4"
        finally:
            cluster.redis.start()
        await _until_ready(cluster, 200)
        with anyio.fail_after(STEP):
            assert text_of(await own.call_tool("fx__add", {"a": 3, "b": 3})) == "6"
    with anyio.fail_after(STEP):
        for n in range(3):
            async with connect(cluster.lb_url) as session:
                assert text_of(await session.call_tool("fx__add", {"a": n, "b": 1})) == str(n + 1)


async def test_a_task_is_got_listed_awaited_and_cancelled_through_every_other_instance(
    cluster: Cluster,
) -> None:
    """One SDK session, each request sent to the instance the test picks: a task created
    through g1 (its tasker) and one through g2 are got, listed, awaited and cancelled
    through the other instances, which forward the requests to the one holding the task."""
    g1, g2, g3 = cluster.gateways
    steer = Steer(g1)
    results: dict[str, str] = {}
    async with connect(g1.url, transport=steer) as session:
        first = await start_task(steer, "first")
        steer.to = g2
        second = await start_task(steer, "second")
        assert first.startswith("g1.") and second.startswith("g2."), (first, second)
        for gateway in (g2, g3):
            steer.to = gateway
            got = await task_request(session, "tasks/get", {"taskId": first})
            assert (got["taskId"], got["status"]) == (first, "working")
        for gateway in cluster.gateways:
            steer.to = gateway
            listed = await task_request(session, "tasks/list", {})
            assert sorted(task["taskId"] for task in listed["tasks"]) == sorted([first, second])

        async def awaited(name: str) -> None:
            result = await task_request(session, "tasks/result", {"taskId": first})
            results[name] = result["content"][0]["text"]

        async with anyio.create_task_group() as group:
            for gateway in (g2, g3):  # both wait on g1, as long as the task runs
                steer.to = gateway
                group.start_soon(awaited, gateway.name)
                await _logged(g1, f"serving tasks/result of task {first} for a request on "
                              f"instance {gateway.name}")
            assert results == {}
            steer.to = g1
            await session.call_tool("tk__finish", {"name": "first"})
        for gateway in (g1, g3):
            steer.to = gateway
            cancelled = await task_request(session, "tasks/cancel", {"taskId": second})
            assert (cancelled["taskId"], cancelled["status"]) == (second, "cancelled")
    assert set(results) == {"g2", "g3"}
    assert len(set(results.values())) == 1 and results["g2"].endswith(" done"), results


async def test_another_session_can_neither_see_nor_use_a_task_on_any_instance(
    cluster: Cluster,
) -> None:
    g1, g2, _ = cluster.gateways
    own, other = Steer(g1), Steer(g1)
    async with connect(g1.url, transport=own) as owner, \
            connect(g1.url, transport=other) as nosy:
        task = await start_task(own, "private")
        for gateway in cluster.gateways:
            other.to = gateway
            assert (await task_request(nosy, "tasks/list", {}))["tasks"] == []
            for method in ("tasks/get", "tasks/cancel", "tasks/result"):
                with pytest.raises(MCPError) as refused:
                    await task_request(nosy, method, {"taskId": task})
                assert refused.value.code == -32602, (gateway.name, method, refused.value)
                assert refused.value.message == f"Unknown task: {task}"
        own.to = g2
        assert (await task_request(owner, "tasks/get", {"taskId": task}))["status"] == "working"


@pytest.fixture
def lone(cluster: Cluster) -> Iterator[Gateway]:
    """A fourth instance on the module's Redis, not behind HAProxy, for a test to kill."""
    with cluster.extra_gateway("g4", only="tk") as gateway:
        yield gateway


async def test_a_task_lost_with_its_killed_instance_is_refused_clearly(
    cluster: Cluster, lone: Gateway,
) -> None:
    """kill -9 of the instance holding a task while g2 waits for its result there: that
    request fails naming the instance; the next is refused at once; tasks/list goes on."""
    asking = cluster.gateways[1]
    steer = Steer(lone)
    failed: list[str] = []

    async def awaited(task: str) -> None:
        with pytest.raises(MCPError) as lost:
            await task_request(session, "tasks/result", {"taskId": task})
        failed.append(lost.value.message)

    async with connect(lone.url, transport=steer) as session:
        task = await start_task(steer, "doomed")
        assert task.startswith("g4."), task
        steer.to = asking
        async with anyio.create_task_group() as group:
            group.start_soon(awaited, task)
            await _logged(lone, f"serving tasks/result of task {task} for a request on "
                          f"instance {asking.name}")
            await anyio.to_thread.run_sync(lone.kill)
        assert failed == [f"gateway instance 'g4', which held task {task}, went away; the "
                          "task was lost with it"]
        with anyio.fail_after(1):
            with pytest.raises(MCPError) as refused:
                await task_request(session, "tasks/get", {"taskId": task})
        assert refused.value.message == (f"Unknown task: {task} was held by gateway instance "
                                         "'g4', which is gone; the task was lost with it")
        assert (await task_request(session, "tasks/list", {}))["tasks"] == []


#: the idle timeout of :func:`forgetful`'s sessions
FORGETFUL_IDLE = 2.0


@pytest.fixture
def forgetful(cluster: Cluster) -> Iterator[Gateway]:
    """A fifth instance, not behind HAProxy, whose sessions expire after 2 s idle."""
    with cluster.extra_gateway("g5", only="tk", idle_timeout=FORGETFUL_IDLE) as gateway:
        yield gateway


async def test_a_task_awaited_elsewhere_keeps_its_session_where_it_runs(
    cluster: Cluster, forgetful: Gateway,
) -> None:
    """A session opened on g2 starts a task on g5 and waits for its result through g2 for
    longer than g5's idle timeout (a session g5 opened just after, and left idle, expires
    meanwhile). g5's copy of the session, which holds the task, does not expire while the
    forwarded request waits: the result arrives, and the task is still known after it."""
    asking = cluster.gateways[1]
    steer = Steer(asking, streams=asking)
    result: dict[str, Any] = {}
    async with connect(asking.url, transport=steer) as session:
        steer.to = forgetful
        task = await start_task(steer, "long")
        assert task.startswith("g5."), task
        async with httpx2.AsyncClient(timeout=STEP) as http:  # no GET stream: it idles
            opened = await http.post(forgetful.url, headers={
                "Accept": BOTH, "Content-Type": "application/json"}, json={
                "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": VERSION, "capabilities": {},
                    "clientInfo": {"name": "idle", "version": "1"}}})
            idle = opened.headers["mcp-session-id"]
        steer.to = asking

        async def awaited() -> None:
            result.update(await task_request(session, "tasks/result", {"taskId": task}))

        async with anyio.create_task_group() as group:
            group.start_soon(awaited)
            await _logged(forgetful, f"serving tasks/result of task {task} for a request on "
                          f"instance {asking.name}")
            await _logged(forgetful, f"session {idle[:8]} expired after")
            steer.to = forgetful
            await session.call_tool("tk__finish", {"name": "long"})
        assert result["content"][0]["text"].endswith(" done"), result
        steer.to = asking
        got = await task_request(session, "tasks/get", {"taskId": task})
        assert (got["taskId"], got["status"]) == (task, "completed")


async def test_a_draining_instance_hands_its_sessions_over(cluster: Cluster) -> None:
    """SIGTERM one instance under load: it refuses new requests with 503, which HAProxy
    sends again to another instance, finishes what it runs and exits 0. No call fails, and
    the sessions it opened go on elsewhere."""
    leaving = cluster.gateways[0]
    completed = 0
    enough = anyio.Event()
    finished: list[int] = []

    async def client(n: int) -> None:
        nonlocal completed
        async with connect(cluster.lb_url) as session:
            for k in range(12):
                assert text_of(await session.call_tool("fx__add", {"a": n, "b": k})) == str(n + k)
                completed += 1
                if completed >= 24:
                    enough.set()
            assert {tool.name for tool in (await session.list_tools()).tools} >= {"fx__add"}
        finished.append(n)

    with anyio.fail_after(STEP * 3):
        async with anyio.create_task_group() as group:
            for n in range(6):
                group.start_soon(client, n)
            await enough.wait()
            status = await anyio.to_thread.run_sync(leaving.terminate, STEP)
    print("\n".join(leaving.lines))
    assert status == 0
    assert sorted(finished) == list(range(6))


@pytest.fixture(scope="module")
def workers(cluster: Cluster) -> Iterator[Workers]:
    """``vmcp start --workers 3`` with ``[cluster]`` on the module's Redis and backend."""
    running = Workers(cluster.folder / "workers", 3)
    try:
        running.start(haproxy_path() or "haproxy", cluster.redis.url, cluster.prefix + "w",
                      cluster.backend_url)
        yield running
    finally:
        running.stop()


async def test_thirty_sessions_complete_on_three_workers_and_survive_a_worker_killed(
    workers: Workers,
) -> None:
    """Behind HAProxy, the workers share one port (the kernel spreads connections) and
    their sessions:
    30 of 30 handshake-era sessions complete; kill -9 of a worker by pid mid-load loses
    none of them, and their next requests succeed on the others."""
    done: list[int] = []

    async def one(n: int) -> None:
        async with connect(workers.balancer.url) as session:
            for k in range(3):
                assert text_of(await session.call_tool("fx__add", {"a": n, "b": k})) == str(n + k)
            assert {tool.name for tool in (await session.list_tools()).tools} >= {"fx__add"}
        done.append(n)

    await thirty_in_batches_of_ten(one)
    assert sorted(done) == list(range(30))
    assert workers.taken_up() > 0  # a session's requests reached more than one worker
    victim = (await anyio.to_thread.run_sync(workers.pids))[1]
    await _kill_under_load(workers.balancer.url, lambda: os.kill(victim, signal.SIGKILL))


def _modern_call(request_id: int, tool: str, arguments: dict[str, Any],
                 more: dict[str, Any], capabilities: dict[str, Any]) -> dict[str, Any]:
    """A 2026-07-28 ``tools/call`` (with ``more`` params: a retry's), as JSON."""
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {
        "name": tool, "arguments": arguments, **more, "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": capabilities}}}


def _modern_headers(tool: str, accept: str = "application/json") -> dict[str, str]:
    return {"Accept": accept, "Content-Type": "application/json",
            "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": tool}


async def _modern_sample(url: str, request_id: int, more: dict[str, Any]) -> dict[str, Any]:
    """POST a 2026-07-28 ``fx__sample`` call (with ``more`` params: a retry's) by hand."""
    async with httpx2.AsyncClient(timeout=STEP) as http:
        answer = await http.post(url, headers=_modern_headers("fx__sample"), json=_modern_call(
            request_id, "fx__sample", {"prompt": "p"}, more, {"sampling": {}}))
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def _kill_under_load(url: str, kill: Callable[[], None]) -> list[str]:
    """Six sessions calling in a loop; ``kill`` once 24 calls are done. Every session goes
    on: its next calls succeed. The errors of the calls that failed."""
    completed = 0
    enough = anyio.Event()
    failed: list[str] = []
    finished: list[int] = []

    async def client(n: int) -> None:
        nonlocal completed
        async with connect(url) as session:
            for k in range(12):
                try:
                    result = await session.call_tool("fx__add", {"a": n, "b": k})
                    assert text_of(result) == str(n + k)
                except MCPError as exc:  # in flight on the killed process
                    failed.append(str(exc))
                completed += 1
                if completed >= 24:
                    enough.set()
            for k in range(3):  # the session lives on: the next requests succeed
                assert text_of(await session.call_tool("fx__add", {"a": k, "b": n})) == str(n + k)
            assert {tool.name for tool in (await session.list_tools()).tools} >= {"fx__add"}
        finished.append(n)

    with anyio.fail_after(STEP * 3):
        async with anyio.create_task_group() as group:
            for n in range(6):
                group.start_soon(client, n)
            await enough.wait()
            kill()
    assert sorted(finished) == list(range(6))
    assert len(failed) <= 6, failed  # at most the calls in flight on the dead process
    return failed


HELD = ("fx__hold", "fx__hold_write")


async def test_kill_9_of_an_instance_under_load_loses_no_session(cluster: Cluster) -> None:
    """Calls held in flight on the instance killed: HAProxy runs the read-only ones again
    on another instance (vmcp left their responses unstarted) and they succeed; the others
    (their responses started before they ran) fail. Every session goes on."""
    alive = [g for g in cluster.gateways if g.alive]
    backend_session: dict[str, Gateway] = {}  # the backend's session id of each instance
    for gateway in alive:
        async with connect(gateway.url) as own:
            header = await own.call_tool("fx__header", {"name": "mcp-session-id"})
            backend_session[text_of(header)] = gateway
    tag = "k"
    outcome: dict[str, str] = {}

    async def held(session: ClientSession, tool: str, key: str) -> None:
        try:
            outcome[key] = text_of(await session.call_tool(tool, {"key": key}))
        except MCPError as exc:
            outcome[key] = f"failed: {exc}"

    with anyio.fail_after(STEP * 4):
        async with connect(cluster.lb_url) as session, connect(cluster.lb_url) as probe:
            async with anyio.create_task_group() as group:
                # held calls until one instance holds a read-only one and a write. The
                # kinds go two and two (R R W W R R ...): wherever the balancer cycles the
                # calls to, over one, two or three instances (one marked down under load
                # leaves two), each instance's own calls come in both kinds within four.
                keys: dict[str, str] = {}
                where: dict[str, Gateway] = {}

                def kinds_on(gateway: Gateway) -> set[str]:
                    return {keys[k] for k, on in where.items() if on is gateway}

                for n in range(24):
                    if any(kinds_on(g) == set(HELD) for g in alive):
                        break
                    tool = HELD[(n // 2) % 2]
                    keys[key := f"{tag}{n}"] = tool
                    group.start_soon(held, session, tool, key)
                    where[key] = backend_session[text_of(await probe.call_tool(
                        "fx__where", {"key": key}))]
                victim = next((g for g in alive if kinds_on(g) == set(HELD)), None)
                assert victim is not None, where
                waiting = await _modern_sample(victim.url, 1, {})  # waits on the victim
                failed = await _kill_under_load(cluster.lb_url, victim.kill)
                for key in keys:
                    await probe.call_tool("fx__let_go", {"key": key})
            assert text_of(await session.call_tool("fx__add", {"a": 1, "b": 1})) == "2"
    # a 2026-07-28 retry whose call waited for input on the victim is refused clearly
    assert waiting["result"]["resultType"] == "input_required", waiting
    (ask,) = waiting["result"]["inputRequests"]
    with anyio.fail_after(STEP):
        refused = await _modern_sample(cluster.lb_url, 2, {
            "requestState": waiting["result"]["requestState"],
            "inputResponses": {ask: {"role": "assistant", "model": "m",
                                     "content": {"type": "text", "text": "late"}}}})
    assert f"waiting on gateway instance {victim.name!r}, which is gone" in refused["error"][
        "message"], refused
    for key, tool in keys.items():
        if where[key] is not victim or tool == "fx__hold":
            assert outcome[key] == f"held {key}", (key, outcome)
        else:
            assert f"was on gateway instance {victim.name!r}" in outcome[key], (key, outcome)
            assert "may or may not have been carried out" in outcome[key]
    print("failed calls:", failed, {k: v for k, v in outcome.items() if "failed" in v})
    name = victim.name
    with anyio.fail_after(STEP):  # its heartbeat expires (it lives 0.9 s)
        names = [info.instance for info in await list_instances(_config(cluster))]
        while name in names:
            await anyio.sleep(0.1)
            names = [info.instance for info in await list_instances(_config(cluster))]
