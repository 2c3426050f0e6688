"""The compiled policy: servers, allow/deny patterns, read-only mode."""

from __future__ import annotations

from vmcp.gateway.access import read_only_tools
from vmcp.persona import Persona, Policy, ServerRules


def make_policy() -> Policy:
    """``coder``: git (get_*/list_* allowed, list_secrets denied, prompts minus admin*), and
    files read-only; ``auditor``: read-only everywhere on git."""
    coder = Persona(name="coder", servers={
        "git": ServerRules(allow_tools=["get_*", "list_*"], deny_tools=["list_secrets"],
                           deny_prompts=["admin*"]),
        "files": ServerRules(read_only=True),
    })
    auditor = Persona(name="auditor", read_only=True, servers={"git": ServerRules()})
    policy = Policy({"coder": coder, "auditor": auditor})
    policy.read_only_tools = {"git": frozenset({"get_log"}), "files": frozenset({"read"})}
    return policy


def test_servers_and_patterns() -> None:
    policy = make_policy()
    assert policy.sees_server("coder", "git") and not policy.sees_server("coder", "db")
    assert policy.visible("coder", "git", "tool", "get_log")
    assert policy.visible("coder", "git", "tool", "list_branches")
    assert not policy.visible("coder", "git", "tool", "list_secrets")  # deny wins
    assert not policy.visible("coder", "git", "tool", "push")  # not allowed
    assert not policy.visible("coder", "git", "tool", "GET_LOG")  # case-sensitive
    assert policy.visible("coder", "git", "prompt", "review")
    assert not policy.visible("coder", "git", "prompt", "admin_reset")
    assert policy.visible("coder", "git", "resource", "git://HEAD")
    assert policy.visible("coder", "git", "resource_template", "git://{ref}")
    assert not policy.visible("coder", "db", "resource", "db://x")
    assert not policy.visible("coder", "db", "tool", "get_log")


def test_read_only() -> None:
    policy = make_policy()
    assert policy.visible("coder", "files", "tool", "read")
    assert not policy.visible("coder", "files", "tool", "write")
    assert policy.visible("coder", "files", "prompt", "anything")  # read-only limits tools
    assert policy.visible("auditor", "git", "tool", "get_log")
    assert not policy.visible("auditor", "git", "tool", "get_blob")


def test_unknown_persona_sees_nothing() -> None:
    policy = make_policy()
    assert not policy.visible("ghost", "git", "tool", "get_log")
    assert not policy.sees_server("ghost", "git")


def test_read_only_tools_of_a_mount() -> None:
    tools: list[dict[str, object]] = [
        {"name": "look", "annotations": {"readOnlyHint": True}},
        {"name": "write", "annotations": {"readOnlyHint": False}},
        {"name": "plain"},
    ]
    assert read_only_tools(["plain"], False, tools) == {"plain"}
    assert read_only_tools(["plain"], True, tools) == {"plain", "look"}
    assert read_only_tools([], True, tools) == {"look"}
