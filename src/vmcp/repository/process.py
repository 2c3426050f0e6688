"""Running the installers' external commands (uv, pip, npm) with a clear error on failure,
and their progress on the ``vmcp.repository.process`` logger."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path

import anyio

from vmcp.repository.errors import InstallError

DEFAULT_TIMEOUT = 900.0
#: seconds between the "still running" lines of a long package-manager run
HEARTBEAT = 15.0
#: progress lines (``running uv pip ...``, ``... done in 4.2s``); the CLI shows them
log = logging.getLogger(__name__)
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
    label = _label(command)
    started = time.monotonic()
    log.info("running %s ...", label)

    async def heartbeat() -> None:
        while True:
            await anyio.sleep(HEARTBEAT)
            log.info("%s still running (%ds)", label, time.monotonic() - started)

    try:
        with anyio.fail_after(timeout):
            async with anyio.create_task_group() as group:
                group.start_soon(heartbeat)
                done = await anyio.run_process(
                    command, cwd=cwd, env=full_env, check=False, stdin=subprocess.DEVNULL
                )
                group.cancel_scope.cancel()
    except TimeoutError as exc:
        raise InstallError(f"{_label(command)} took longer than {timeout:g}s") from exc
    except OSError as exc:
        raise InstallError(f"cannot run {command[0]}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        output = (done.stderr or done.stdout).decode("utf-8", "replace").strip()
        tail = "\n".join(output.splitlines()[-_TAIL_LINES:])
        raise InstallError(f"{_label(command)} failed (exit {done.returncode}):\n{tail}")
    log.info("%s done in %.1fs", label, time.monotonic() - started)
    return done.stdout.decode("utf-8", "replace")


def _label(command: list[str]) -> str:
    name = Path(command[0]).name
    verb = next((part for part in command[1:] if not part.startswith("-")), "")
    return f"{name} {verb}".strip()
