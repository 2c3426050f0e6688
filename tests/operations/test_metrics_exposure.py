"""The metrics endpoint follows the MCP fronts' rule: public only behind authentication."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from ops_harness import Home

BASE = {"gateway": {"fronts": ["http"]}, "transports.http": {"port": 0}}


def test_public_metrics_without_auth_are_refused(home: Home) -> None:
    home.write({**BASE, "monitoring": {"metrics_port": 0, "metrics_host": "0.0.0.0"}})
    done = home.vmcp("start")
    assert done.returncode == 2
    assert ("monitoring.metrics_host: refusing to serve metrics on '0.0.0.0' without "
            "authentication") in done.stderr
    assert not home.pid_file.exists()


def test_public_metrics_with_auth_need_a_credential(home: Home) -> None:
    home.write({**BASE, "monitoring": {"metrics_port": 0, "metrics_host": "0.0.0.0"},
                "auth": {"driver": "token"}})
    assert home.vmcp("persona", "create", "ops").returncode == 0
    created = home.vmcp("token", "create", "--persona", "ops")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    started = home.vmcp("start", "-d")
    assert started.returncode == 0, started.stderr
    url = home.cli_json("status")["metrics"].replace("0.0.0.0", "127.0.0.1")

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    assert refused.value.headers["WWW-Authenticate"].startswith("Bearer ")
    asked = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(asked, timeout=10) as answer:
        assert answer.status == 200
        assert b"vmcp_info" in answer.read()
