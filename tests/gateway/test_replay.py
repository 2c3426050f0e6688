"""Which requests a load balancer may run again on another instance (``replay_safe``).

A real (not started) gateway with two stdio mounts whose tool lists are set as their
backends would list them: one trusted, one not.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from vmcp.config import MountConfig, VmcpConfig
from vmcp.gateway.gateway import Gateway
from vmcp.gateway.namespace import Namespace

TOOLS = [
    {"name": "lookup", "inputSchema": {"type": "object"},
     "annotations": {"readOnlyHint": True}},
    {"name": "put", "inputSchema": {"type": "object"},
     "annotations": {"readOnlyHint": False, "idempotentHint": True}},
    {"name": "store", "inputSchema": {"type": "object"},
     "annotations": {"readOnlyHint": False}},
    {"name": "plain", "inputSchema": {"type": "object"}},
]


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """The gateway, its mounts up with :data:`TOOLS` listed."""
    monkeypatch.setenv("VMCP_HOME", str(tmp_path))
    made = Gateway(VmcpConfig())
    for mount_id, settings in (("tr", {"trusted": True}),
                               ("un", {"read_only_tools": ["plain"]})):
        mount = made._create_mount(MountConfig(id=mount_id, command=sys.executable,
                                               **settings))
        mount.catalog["tools"] = [dict(tool) for tool in TOOLS]
        mount.state = "up"
    made.namespace = Namespace(made.mounts.values(), "__")
    return made


def call(name: str) -> dict[str, Any]:
    """A ``tools/call`` of exposed tool ``name``."""
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": name, "arguments": {}}}


def test_lists_reads_and_gets_are_safe_to_run_again(gateway: Gateway) -> None:
    for method in ("tools/list", "resources/read", "prompts/get", "initialize", "ping"):
        assert gateway.replay_safe({"jsonrpc": "2.0", "id": 1, "method": method})
    for method in ("tasks/cancel", "subscriptions/listen", "sampling/createMessage"):
        assert not gateway.replay_safe({"jsonrpc": "2.0", "id": 1, "method": method})


def test_a_trusted_mounts_annotations_decide_a_tool_call(gateway: Gateway) -> None:
    assert gateway.replay_safe(call("tr__lookup"))  # readOnlyHint
    assert gateway.replay_safe(call("tr__put"))  # idempotentHint
    assert not gateway.replay_safe(call("tr__store"))
    assert not gateway.replay_safe(call("tr__plain"))  # no annotations: may have effects


def test_an_untrusted_mount_counts_only_its_read_only_tools(gateway: Gateway) -> None:
    assert not gateway.replay_safe(call("un__lookup"))  # its annotations are not believed
    assert not gateway.replay_safe(call("un__put"))
    assert gateway.replay_safe(call("un__plain"))  # listed in read_only_tools


def test_an_unknown_tool_or_malformed_call_is_not_safe(gateway: Gateway) -> None:
    assert not gateway.replay_safe(call("nobody__lookup"))
    assert not gateway.replay_safe({"jsonrpc": "2.0", "id": 1, "method": "tools/call"})
