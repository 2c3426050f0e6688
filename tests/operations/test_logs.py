"""The log: secrets never appear in it, it rotates, and it can be JSON lines."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from vmcp.config import LoggingSettings, VmcpConfig
from vmcp.logs import config_secrets, configure_logging

SECRET_ENV = "env-secret-0123456789"
SECRET_VAR = "from-the-environment-42"
HEADER_TOKEN = "hdr-token-abcdef"


def config_with_secrets() -> VmcpConfig:
    """A mount with env values (one a ``${VAR}`` reference) and an Authorization header."""
    return VmcpConfig.model_validate({"servers": {
        "local": {"command": "x", "env": {"API_KEY": SECRET_ENV, "TOKEN": "${OPS_TEST_TOKEN}"}},
        "remote": {"transport": "http", "url": "http://127.0.0.1:1/mcp",
                   "headers": {"Authorization": f"Bearer {HEADER_TOKEN}"}},
    }})


def log_everything(log: logging.Logger) -> None:
    """Lines that carry secrets in every way they tend to reach a log."""
    log.info("spawning with env %s", {"API_KEY": SECRET_ENV})
    log.info("backend said: token is %s", SECRET_VAR)
    log.warning("request headers: {'Authorization': 'Bearer %s'}", HEADER_TOKEN)
    log.warning("Authorization: Basic dXNlcjpwYXNzd29yZA==")
    log.info("POST /token?access_token=abc123secret&x=1 password=hunter2-long")
    log.info('{"client_secret": "cs-999999", "progressToken": 7}')
    try:
        raise RuntimeError(f"backend failed with {SECRET_ENV}")
    except RuntimeError:
        log.exception("mount local failed")


@pytest.mark.parametrize("json_lines", [False, True])
def test_secrets_never_reach_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     json_lines: bool) -> None:
    monkeypatch.setenv("OPS_TEST_TOKEN", SECRET_VAR)
    config = config_with_secrets()
    path = tmp_path / "vmcp.log"
    configure_logging(LoggingSettings(file=str(path), json_lines=json_lines), "debug",
                      config_secrets(config))
    log_everything(logging.getLogger("vmcp.test"))
    text = path.read_text()
    for secret in (SECRET_ENV, SECRET_VAR, HEADER_TOKEN, "dXNlcjpwYXNzd29yZA", "abc123secret",
                   "hunter2", "cs-999999"):
        assert secret not in text
    assert text.count("***") >= 8
    assert "progressToken" in text and "7" in text  # protocol bookkeeping is left alone
    assert "mount local failed" in text and "RuntimeError" in text
    if json_lines:
        entries = [json.loads(line) for line in text.splitlines()]
        assert entries[-1]["level"] == "error" and "exception" in entries[-1]


def test_log_file_rotates(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "vmcp.log"
    configure_logging(LoggingSettings(file=str(path), max_bytes=2048, backup_count=2))
    log = logging.getLogger("vmcp.test")
    for n in range(200):
        log.info("line %d %s", n, "x" * 40)
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["vmcp.log", "vmcp.log.1", "vmcp.log.2"]
    assert all(p.stat().st_size <= 2048 + 200 for p in path.parent.iterdir())
    assert "line 199" in path.read_text()
