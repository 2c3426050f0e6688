"""Fixtures for the repository tests: an empty ``VMCP_HOME`` per test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``VMCP_HOME`` (and no ``VMCP_CONFIG``) for the test."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("VMCP_HOME", str(path))
    monkeypatch.delenv("VMCP_CONFIG", raising=False)
    return path
