"""Commands that change installed servers or mounts take turns (a held lock is waited for)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vmcp.repository.paths import changes_lock

HOLDER = """
import sys
from pathlib import Path
from vmcp.fileutil import held_lock
with held_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_change_waits_for_the_one_in_progress(home: Path) -> None:
    env = {**os.environ, "VMCP_HOME": str(home)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(changes_lock())],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    started = [holder]
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        waiter = subprocess.Popen([sys.executable, "-m", "vmcp", "uninstall", "nothing"],
                                  stderr=subprocess.PIPE, env=env)
        started.append(waiter)
        assert waiter.stderr is not None
        # it says why it waits, and has not finished meanwhile
        assert b"waiting for another vmcp command" in waiter.stderr.readline()
        assert waiter.poll() is None
        holder.communicate(b"\n", timeout=30)  # the holder lets go and ends
        _, rest = waiter.communicate(timeout=60)
        assert waiter.returncode == 1
        assert b"'nothing' is not installed" in rest
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_looking_does_not_wait(home: Path) -> None:
    env = {**os.environ, "VMCP_HOME": str(home)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(changes_lock())],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        listing = subprocess.run([sys.executable, "-m", "vmcp", "installed"], env=env,
                                 capture_output=True, timeout=60, check=False)
        assert listing.returncode == 0, listing.stderr
        assert b"waiting" not in listing.stderr
    finally:
        holder.communicate(b"\n", timeout=30)
