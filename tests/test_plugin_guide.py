"""The worked plugin of docs/plugins.md works as printed: its balancer picks the replica with
the fewest calls in flight and its hook adds a command."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import click
from click.testing import CliRunner

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def _module(filename: str) -> ModuleType:
    """The guide's code block that starts with ``# <filename>``, run as a module."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text("utf-8"), re.S)
    [source] = [b for b in blocks if b.startswith(f"# {filename}\n")]
    module = ModuleType(filename)
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


@dataclass
class FakeReplica:
    replica_id: str
    available: bool
    in_flight: int


def test_the_guides_balancer_picks_the_least_busy_replica() -> None:
    fewest = _module("src/vmcp_lb_fewest/balancer.py").Fewest()
    replicas = [FakeReplica("a", True, 3), FakeReplica("b", False, 0),
                FakeReplica("c", True, 1), FakeReplica("d", True, 1)]
    assert fewest.pick(replicas).replica_id == "c"
    assert fewest.pick([FakeReplica("b", False, 0)]) is None


def test_the_guides_hook_adds_a_command() -> None:
    hooks = _module("src/vmcp_lb_fewest/hooks.py")
    group = click.Group("vmcp")
    hooks.vmcp_register_commands(group)
    result = CliRunner().invoke(group, ["balancers"])
    assert result.exit_code == 0
    assert "round_robin" in result.output.split()
