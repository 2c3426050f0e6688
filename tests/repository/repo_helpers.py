"""Helpers for the repository tests: a static HTTP server, git repositories, the CLI.

Everything is real: files are served by ``http.server`` on a free loopback port, git
repositories are made with the ``git`` command, and the CLI runs through click.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from vmcp.cli import cli


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1 and a free port; yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


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
