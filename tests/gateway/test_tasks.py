"""Handshake-era tasks (2025-11-25, experimental) pass through with task ids mapped.

Two copies of the raw ``tasker`` backend both number their tasks "1", "2"...; through the
gateway each task gets its own id, and get/result/list/status reach the right backend.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from gateway_harness import FIXTURE_SERVERS, Gateway, backend, raw_gateway, raw_initialize

pytestmark = pytest.mark.anyio

TASKER = FIXTURE_SERVERS / "tasker.py"


def request(request_id: int, method: str, params: dict[str, object]) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


async def test_task_ids_are_mapped_and_routed(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway({"one": backend(TASKER), "two": backend(TASKER)})
    async with raw_gateway(gateway) as client:
        init = await raw_initialize(client)
        assert "tasks" in init["result"]["capabilities"]
        created = {}
        for n, mount in enumerate(("one", "two"), start=1):
            await client.send(request(n, "tools/call", {"name": f"{mount}__work",
                                                        "arguments": {}, "task": {"ttl": 60000}}))
            created[mount] = (await client.receive_response(n))["result"]["task"]["taskId"]
        assert created["one"] != created["two"]  # both backends said "1"

        await client.send(request(10, "tasks/get", {"taskId": created["two"]}))
        got = (await client.receive_response(10))["result"]
        assert got["taskId"] == created["two"] and got["status"] == "working"

        await client.send(request(11, "tasks/result", {"taskId": created["one"]}))
        await client.send(request(12, "tools/call", {"name": "one__finish",
                                                     "arguments": {"taskId": "1"}}))
        seen = []
        while len([m for m in seen if "id" in m and "method" not in m]) < 2:
            seen.append(await client.receive())
        status = [m for m in seen if m.get("method") == "notifications/tasks/status"]
        assert status and status[0]["params"]["taskId"] == created["one"]
        result = next(m for m in seen if m.get("id") == 11)
        assert result["result"]["content"][0]["text"] == "task 1 done"

        await client.send(request(13, "tasks/list", {}))
        listed = (await client.receive_response(13))["result"]["tasks"]
        assert sorted(t["taskId"] for t in listed) == sorted(created.values())

        await client.send(request(14, "tasks/get", {"taskId": "1"}))  # a backend's own id
        assert (await client.receive_response(14))["error"]["code"] == -32602
