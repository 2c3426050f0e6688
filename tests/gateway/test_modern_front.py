"""The 2026-07-28 era on the stdio front: per-request ``_meta``, ``server/discover``, the
envelope checks, result stamping, and bridging a handshake-era backend's requests for input
into ``input_required`` rounds. Clients are the official SDK's ``Client`` pinned to the
modern era or in automatic mode, and raw JSON-RPC lines where the wire itself is checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import mcp.types as types
import pytest
from gateway_harness import CONNECT_TIMEOUT, Gateway, raw_gateway, raw_initialize
from mcp import Client
from mcp.shared.exceptions import MCPError

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}


def modern_request(request_id: Any, method: str, params: dict[str, Any] | None = None,
                   **meta: Any) -> dict[str, Any]:
    """A raw modern request whose ``_meta`` carries the envelope (plus ``meta``)."""
    body = dict(params or {})
    body["_meta"] = {**META, **meta}
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": body}


async def test_discover_lists_both_eras_and_a_lifetime(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with raw_gateway(gateway) as client:
        await client.send(modern_request(1, "server/discover"))
        result = (await client.receive_response(1))["result"]
    assert MODERN in result["supportedVersions"] and "2025-11-25" in result["supportedVersions"]
    assert result["resultType"] == "complete"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "vmcp"
    assert result["cacheScope"] == "public" and result["ttlMs"] >= 0
    assert "tools" in result["capabilities"] and "tasks" not in result["capabilities"]


async def test_envelope_errors(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with raw_gateway(gateway) as client:
        await client.send(modern_request(1, "tools/list", **{
            "io.modelcontextprotocol/protocolVersion": "2099-01-01"}))
        error = (await client.receive_response(1))["error"]
        assert error["code"] == -32022
        assert MODERN in error["data"]["supported"] and error["data"]["requested"] == "2099-01-01"
        await client.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {
            "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}}})
        assert (await client.receive_response(2))["error"]["code"] == -32602
        await client.send(modern_request(3, "ping"))
        assert (await client.receive_response(3))["error"]["code"] == -32601
        await client.send(modern_request(4, "tools/list", **{
            "io.modelcontextprotocol/logLevel": "loud"}))
        assert (await client.receive_response(4))["error"]["code"] == -32602


async def test_lists_and_calls_carry_the_modern_shape(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with raw_gateway(gateway) as client:
        await client.send(modern_request(1, "tools/list"))
        listed = (await client.receive_response(1))["result"]
        assert listed["resultType"] == "complete"
        assert listed["cacheScope"] == "public" and isinstance(listed["ttlMs"], int)
        assert any(tool["name"] == "alpha__echo" for tool in listed["tools"])
        await client.send(modern_request(2, "tools/call", {"name": "alpha__echo",
                                                           "arguments": {"text": "hi"}}))
        called = (await client.receive_response(2))["result"]
        assert called["resultType"] == "complete"
        assert called["content"][0]["text"] == "alpha: hi"
        assert called["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "vmcp"
        await client.send(modern_request(3, "resources/read", {"uri": "alpha://doc/1"}))
        read = (await client.receive_response(3))["result"]
        assert read["resultType"] == "complete" and read["cacheScope"] == "private"
        assert "ttlMs" in read and read["contents"]


async def test_both_eras_on_one_connection(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """A handshake-era session and modern requests share a connection without mixing."""
    gateway = make_gateway(two_backends)
    async with raw_gateway(gateway) as client:
        await client.send(modern_request("m1", "tools/call", {"name": "alpha__echo",
                                                              "arguments": {"text": "early"}}))
        assert (await client.receive_response("m1"))["result"]["resultType"] == "complete"
        init = await raw_initialize(client)
        assert init["result"]["protocolVersion"] == "2025-11-25"
        await client.send({"jsonrpc": "2.0", "id": "l1", "method": "tools/call", "params": {
            "name": "alpha__echo", "arguments": {"text": "legacy"}}})
        legacy = (await client.receive_response("l1"))["result"]
        assert "resultType" not in legacy and legacy["content"][0]["text"] == "alpha: legacy"


async def test_sdk_client_pinned_to_the_modern_era(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    with anyio.fail_after(CONNECT_TIMEOUT):
        async with Client(gateway.server_parameters(), mode=MODERN) as client:
            assert client.protocol_version == MODERN
            tools = await client.list_tools()
            assert {"alpha__echo", "beta__whoami"} <= {tool.name for tool in tools.tools}
            result = await client.call_tool("alpha__add", {"a": 2, "b": 3})
            assert result.structured_content == {"sum": 5}
            prompt = await client.get_prompt("alpha__greet", {"name": "Ada"})
            assert prompt.messages


async def test_sdk_client_in_automatic_mode_goes_modern(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    with anyio.fail_after(CONNECT_TIMEOUT):
        async with Client(gateway.server_parameters()) as client:
            assert client.protocol_version == MODERN
            result = await client.call_tool("alpha__echo", {"text": "auto"})
            assert result.content[0].text == "alpha: auto"  # type: ignore[union-attr]


async def test_sampling_of_a_handshake_backend_becomes_input_required(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """The backend's sampling request reaches a modern client as ``input_required``; the
    SDK answers it and retries, and the waiting backend call finishes with that answer."""
    asked: list[types.CreateMessageRequestParams] = []

    async def sampling(context: Any, params: types.CreateMessageRequestParams
                       ) -> types.CreateMessageResult:
        asked.append(params)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="a modern answer"),
            model="test-model")

    gateway = make_gateway(two_backends)
    with anyio.fail_after(CONNECT_TIMEOUT):
        async with Client(gateway.server_parameters(), mode=MODERN,
                          sampling_callback=sampling) as client:
            result = await client.call_tool("alpha__sample", {"prompt": "hello?"})
    assert len(asked) == 1
    assert result.content[0].text == "sampled: a modern answer (test-model)"  # type: ignore[union-attr]


async def test_elicitation_and_roots_rounds(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"name": "Ada", "age": 36})

    async def roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///work/modern")])

    gateway = make_gateway(two_backends)
    with anyio.fail_after(CONNECT_TIMEOUT):
        async with Client(gateway.server_parameters(), mode=MODERN, elicitation_callback=elicit,
                          list_roots_callback=roots) as client:
            elicited = await client.call_tool("alpha__elicit_form", {})
            listed = await client.call_tool("alpha__roots", {})
    assert json.loads(elicited.content[0].text)["content"]["name"] == "Ada"  # type: ignore[union-attr]
    assert listed.structured_content == {"roots": ["file:///work/modern"]}


async def test_forged_and_replayed_request_state_are_refused(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    caps = {"sampling": {}}
    gateway = make_gateway(two_backends)
    async with raw_gateway(gateway) as client:
        call = {"name": "alpha__sample", "arguments": {"prompt": "p"}}
        await client.send(modern_request(1, "tools/call", call, **{
            "io.modelcontextprotocol/clientCapabilities": caps}))
        first = (await client.receive_response(1))["result"]
        assert first["resultType"] == "input_required"
        (key, ask), = first["inputRequests"].items()
        assert ask["method"] == "sampling/createMessage"
        state = first["requestState"]
        forged = state[:-4] + ("AAAA" if not state.endswith("AAAA") else "BBBB")
        await client.send(modern_request(2, "tools/call", {**call, "requestState": forged,
                                                           "inputResponses": {}}, **{
            "io.modelcontextprotocol/clientCapabilities": caps}))
        assert (await client.receive_response(2))["error"]["code"] == -32602
        answer = {"role": "assistant", "model": "m",
                  "content": {"type": "text", "text": "ok"}}
        retry = {**call, "requestState": state, "inputResponses": {key: answer}}
        await client.send(modern_request(3, "tools/call", retry, **{
            "io.modelcontextprotocol/clientCapabilities": caps}))
        done = (await client.receive_response(3))["result"]
        assert done["resultType"] == "complete"
        assert done["content"][0]["text"] == "sampled: ok (m)"
        await client.send(modern_request(4, "tools/call", retry, **{
            "io.modelcontextprotocol/clientCapabilities": caps}))
        replayed = (await client.receive_response(4))["error"]
        assert replayed["code"] == -32602 and "used already" in replayed["message"]


async def test_a_client_that_never_retries_releases_the_backend_call(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """At the input timeout the waiting call ends, and the backend hears it is cancelled."""
    gateway = make_gateway(two_backends, {"input_timeout": 0.5})
    async with raw_gateway(gateway) as client:
        await client.send(modern_request(1, "tools/call", {
            "name": "alpha__sample", "arguments": {"prompt": "p"}}, **{
            "io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}))
        first = (await client.receive_response(1))["result"]
        assert first["resultType"] == "input_required"
        await client.send(modern_request(2, "tools/call", {
            "name": "alpha__was_cancelled", "arguments": {"tool": "sample", "timeout": 10}}))
        answer = (await client.receive_response(2))["result"]
        assert answer["content"][0]["text"] == "cancelled"
        retry = {"name": "alpha__sample", "arguments": {"prompt": "p"},
                 "requestState": first["requestState"], "inputResponses": {}}
        await client.send(modern_request(3, "tools/call", retry, **{
            "io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}))
        assert (await client.receive_response(3))["error"]["code"] == -32602


async def test_input_needs_the_declared_capability(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """A modern client that declared no sampling is never asked for it."""
    gateway = make_gateway(two_backends)
    async with raw_gateway(gateway) as client:
        await client.send(modern_request(1, "tools/call", {
            "name": "alpha__sample", "arguments": {"prompt": "p"}}))
        response = await client.receive_response(1)
    result = response.get("result", {})
    assert result.get("resultType") != "input_required"
    assert result.get("isError") or "error" in response


async def test_unknown_tool_is_a_json_rpc_error(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    with anyio.fail_after(CONNECT_TIMEOUT):
        async with Client(gateway.server_parameters(), mode=MODERN) as client:
            with pytest.raises(MCPError):
                await client.call_tool("nobody__nothing", {})


async def test_log_level_and_progress_belong_to_the_request(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    """A modern request gets log lines only at or above the level it named, and its own
    progress; with no level it gets no log lines at all."""
    logged: list[str] = []
    progress: list[float] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logged.append(params.level)

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    gateway = make_gateway(two_backends)
    with anyio.fail_after(CONNECT_TIMEOUT):
        async with Client(gateway.server_parameters(), mode=MODERN, log_level="error",
                          logging_callback=on_log) as client:
            await client.call_tool("alpha__log_levels", {})
            await client.call_tool("alpha__slow", {"steps": 3}, progress_callback=on_progress)
        async with Client(gateway.server_parameters(), mode=MODERN,
                          logging_callback=on_log) as quiet:
            before = len(logged)
            await quiet.call_tool("alpha__log_levels", {})
            assert len(logged) == before
    assert logged == ["error", "critical"]
    assert progress == [1, 2, 3]


async def test_listen_hears_list_changes_and_resource_updates(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    from mcp.shared.subscriptions import ResourceUpdated, ToolsListChanged

    gateway = make_gateway(two_backends)
    with anyio.fail_after(CONNECT_TIMEOUT):
        async with Client(gateway.server_parameters(), mode=MODERN) as client, client.listen(
                tools_list_changed=True, resource_subscriptions=["alpha://doc/1"]) as listen:
            assert listen.honored.tools_list_changed
            await client.call_tool("alpha__add_tool", {"name": "fresh"})
            events = [await anext(listen)]
            assert isinstance(events[0], ToolsListChanged)
            tools = await client.list_tools()
            assert "alpha__fresh" in {tool.name for tool in tools.tools}
            touched = await client.call_tool("alpha__touch", {"uri": "alpha://doc/1"})
            assert touched.structured_content == {"subscribed": True}
            updated = await anext(listen)
            assert isinstance(updated, ResourceUpdated) and updated.uri == "alpha://doc/1"


async def test_cancelling_a_modern_request_cancels_the_backend_call(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, dict[str, Any]]
) -> None:
    gateway = make_gateway(two_backends)
    async with raw_gateway(gateway) as client:
        await client.send(modern_request("b", "tools/call", {"name": "alpha__block",
                                                             "arguments": {}}, progressToken=7))
        started = await client.receive()  # the call is running at the backend
        assert started["method"] == "notifications/progress"
        assert started["params"]["progressToken"] == 7
        await client.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                           "params": {"requestId": "b", "reason": "changed my mind"}})
        await client.send(modern_request("w", "tools/call", {
            "name": "alpha__was_cancelled", "arguments": {"tool": "block", "timeout": 10}}))
        answer = (await client.receive_response("w"))["result"]
        assert answer["content"][0]["text"] == "cancelled"


def test_a_sealed_state_opens_only_as_minted() -> None:
    """Anything appended to a state, even after its padding, or any caller but its own,
    is refused."""
    from vmcp.gateway.sealing import StateSealer
    from vmcp.protocol.errors import RpcError

    sealer = StateSealer("a shared key")
    state = sealer.seal("wait", "ada", 60, {"h": "x"})
    assert sealer.open(state, "ada") == ("wait", {"h": "x"})
    assert StateSealer("a shared key").open(state, "ada")[1] == {"h": "x"}  # another instance
    for forged in (state + "-TAMPERED", state + "=", state + "==x", state[:-1],
                   "vmcp1." + state.split(".", 1)[1][::-1], "not a state"):
        with pytest.raises(RpcError) as caught:
            sealer.open(forged, "ada")
        assert caught.value.code == -32602
    with pytest.raises(RpcError):
        sealer.open(state, "bob")
    with pytest.raises(RpcError):
        StateSealer("another key").open(state, "ada")
