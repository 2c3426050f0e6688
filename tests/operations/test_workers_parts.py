"""The parts of ``vmcp start --workers N`` that need no gateway: the role a worker is given,
the refusals and warnings, the shared sealing key, and the port the supervisor reserves."""

from __future__ import annotations

import socket

import pytest

from vmcp.config import ConfigError, VmcpConfig
from vmcp.control.workers import (
    WorkerRole,
    refuse_stdio,
    reserve_ports,
    session_warning,
    worker_env,
)


def test_a_role_survives_the_command_line() -> None:
    role = WorkerRole(1, "/run/worker-1.sock", 7, {"http": {"port": 8000, "reuse_port": True}},
                      "/logs/vmcp.log")
    assert WorkerRole.from_arg(role.to_arg()) == role
    with pytest.raises(ValueError, match="JSON object"):
        WorkerRole.from_arg("[1]")


def test_stdio_is_refused_with_several_workers_only() -> None:
    refuse_stdio(["stdio"], 1)
    refuse_stdio(["http", "ws"], 4)
    with pytest.raises(ConfigError) as caught:
        refuse_stdio(["http", "stdio"], 2)
    assert "stdio front serves the one client" in caught.value.problems[0]


def test_the_warning_names_handshake_era_http_sessions() -> None:
    config = VmcpConfig()
    assert "Mcp-Session-Id" in (session_warning(config, ["http"]) or "")
    assert session_warning(config, ["ws"]) is None  # a connection is a session: it stays


def test_workers_share_one_sealing_key_unless_one_is_configured(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VMCP_STATE_KEY", raising=False)
    unset = worker_env(VmcpConfig())
    assert len(unset["VMCP_STATE_KEY"]) >= 32
    assert worker_env(VmcpConfig()) != unset  # a key per supervisor, never a fixed one
    configured = VmcpConfig.model_validate({"gateway": {"state_key": "shared"}})
    assert "VMCP_STATE_KEY" not in worker_env(configured)


def test_the_reserved_port_is_shared_with_listeners_that_reuse_it() -> None:
    config = VmcpConfig.model_validate({"transports": {"http": {"port": 0}}})
    (reservation,) = reserve_ports(config, ["http"], {})
    try:
        assert reservation.port > 0 and reservation.path == "/mcp"
        # Two listeners, as two workers bind it.
        listeners = []
        for _ in range(2):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", reservation.port))
            sock.listen()
            listeners.append(sock)
        # Anyone else is kept out.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other, \
                pytest.raises(OSError):
            other.bind(("127.0.0.1", reservation.port))
        for sock in listeners:
            sock.close()
    finally:
        reservation.sock.close()


def test_a_front_without_a_port_cannot_be_shared() -> None:
    with pytest.raises(ConfigError, match="does not listen on a network port"):
        reserve_ports(VmcpConfig(), ["stdio"], {})
