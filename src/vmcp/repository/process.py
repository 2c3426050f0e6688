"""Running the installers' external commands (uv, pip, npm) with a clear error on failure."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import anyio

from vmcp.repository.errors import InstallError

DEFAULT_TIMEOUT = 900.0
_TAIL_LINES = 15


async def run_command(
    command: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """Run ``command`` to completion and return its standard output.

    :raises InstallError: it cannot start, exits non-zero (with the end of its error output)
        or runs longer than ``timeout`` seconds (it is then killed).
    """
    full_env = {**os.environ, **(env or {})}
    try:
        with anyio.fail_after(timeout):
            done = await anyio.run_process(
                command, cwd=cwd, env=full_env, check=False, stdin=subprocess.DEVNULL
            )
    except TimeoutError as exc:
        raise InstallError(f"{_label(command)} took longer than {timeout:g}s") from exc
    except OSError as exc:
        raise InstallError(f"cannot run {command[0]}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        output = (done.stderr or done.stdout).decode("utf-8", "replace").strip()
        tail = "\n".join(output.splitlines()[-_TAIL_LINES:])
        raise InstallError(f"{_label(command)} failed (exit {done.returncode}):\n{tail}")
    return done.stdout.decode("utf-8", "replace")


def _label(command: list[str]) -> str:
    name = Path(command[0]).name
    verb = next((part for part in command[1:] if not part.startswith("-")), "")
    return f"{name} {verb}".strip()
