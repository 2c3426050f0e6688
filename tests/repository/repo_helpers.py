"""Helpers for the repository tests: git repositories and the CLI.

Everything is real: git repositories are made with the ``git`` command and the CLI runs
through click (files are served by :func:`vmcp.testing.serve_folder`).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from vmcp.cli import cli


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity; return its output."""
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org", *args],
        cwd=repo, check=True, capture_output=True, text=True,
    )
    return done.stdout.strip()


def server_json(name: str, description: str, version: str = "1.0.0", **extra: Any) -> str:
    """A valid ``server.json`` text with one remote, plus any extra fields."""
    doc = {
        "name": name,
        "description": description,
        "version": version,
        "remotes": [{"type": "streamable-http", "url": f"https://{name.split('/')[-1]}.example/mcp"}],
        **extra,
    }
    return json.dumps(doc, indent=2)


def run_cli(*args: str, ok: bool = True) -> Result:
    """Run ``vmcp ARGS`` in-process; by default fail the test unless it exits 0."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        command = " ".join(args)
        assert result.exit_code == 0, f"vmcp {command} -> {result.exit_code}\n{result.output}"
    return result
