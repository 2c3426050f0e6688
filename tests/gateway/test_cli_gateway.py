"""``vmcp list`` and ``vmcp info ID`` against a real mount table."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from gateway_harness import ALPHA, BETA, Gateway


def run_vmcp(gateway: Gateway, *command: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m vmcp [--config C] <command>`` with the gateway's ``VMCP_HOME``."""
    return subprocess.run(
        [sys.executable, *gateway.command_args(*command)],
        env={**{k: v for k, v in os.environ.items() if k != "VMCP_CONFIG"}, **gateway.env()},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_list_shows_mounts(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, Any]
) -> None:
    gateway = make_gateway(two_backends)
    out = run_vmcp(gateway, "list")
    assert out.returncode == 0, out.stderr
    lines = [line.split() for line in out.stdout.splitlines() if line.strip()]
    by_id = {line[0]: line for line in lines}
    assert list(by_id)[:2] == ["alpha", "beta"]
    assert "stdio" in by_id["alpha"]
    assert sys.executable in by_id["alpha"]
    assert str(ALPHA) in by_id["alpha"]
    assert str(BETA) in by_id["beta"]


def test_info_shows_what_the_backend_offers(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, Any]
) -> None:
    gateway = make_gateway(two_backends)
    out = run_vmcp(gateway, "info", "alpha")
    assert out.returncode == 0, out.stderr
    # Every tool, including those on the backend's last page (it paginates 2 per page).
    for tool in ("echo", "add", "crash", "add_tool", "touch"):
        assert tool in out.stdout
    for prompt in ("greet", "review", "haiku"):
        assert prompt in out.stdout
    for uri in (
        "shared://readme",
        "alpha://counter",
        "alpha://items/{id}",
        "shared://files/{path}",
    ):
        assert uri in out.stdout


def test_info_of_second_mount(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, Any]
) -> None:
    gateway = make_gateway(two_backends)
    out = run_vmcp(gateway, "info", "beta")
    assert out.returncode == 0, out.stderr
    for item in (
        "whoami",
        "greet",
        "review",
        "shared://readme",
        "beta://info",
        "beta://notes/{id}",
    ):
        assert item in out.stdout
    assert "crash" not in out.stdout


def test_info_of_unknown_mount_fails(
    make_gateway: Callable[..., Gateway], two_backends: dict[str, Any]
) -> None:
    gateway = make_gateway(two_backends)
    out = run_vmcp(gateway, "info", "nope")
    assert out.returncode != 0
    assert "nope" in out.stderr


def test_list_without_configuration_shows_the_demo_mounts(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway(None)
    out = run_vmcp(gateway, "list")
    assert out.returncode == 0, out.stderr
    assert "toolbox" in out.stdout
    assert "notes" in out.stdout
    assert "vmcp.demo.toolbox" in out.stdout
