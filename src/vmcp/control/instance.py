"""One gateway per home: the instance lock, the pid file, and telling a stale one.

The running gateway holds an exclusive ``flock`` on ``run/vmcp.lock`` for its whole life; the
kernel drops it when the process ends, however it ends. So a pid file whose lock nobody holds
is stale, whatever pid it names, and is cleaned away together with the control socket.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass

from vmcp.control.paths import RunPaths
from vmcp.fileutil import atomic_write_text

#: how long acquiring waits out a probe that holds the lock for an instant
_ACQUIRE_WAIT = 1.0


class AlreadyRunning(Exception):
    """Another gateway runs with the same home."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(f"a gateway is already running with this home (pid {pid or '?'})")
        self.pid = pid


@dataclass(frozen=True)
class Probe:
    """What is found in ``run/``: a running gateway, or none (and a stale pid cleaned)."""

    running: bool
    pid: int | None = None
    #: the pid a stale pid file named (the file was removed)
    stale_pid: int | None = None


def read_pid(paths: RunPaths) -> int | None:
    """The pid in ``run/vmcp.pid``, or None when missing or unreadable."""
    try:
        return int(paths.pid_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def _clean(paths: RunPaths) -> int | None:
    stale = read_pid(paths) if paths.pid_file.exists() else None
    paths.pid_file.unlink(missing_ok=True)
    paths.socket.unlink(missing_ok=True)
    return stale


def probe(paths: RunPaths) -> Probe:
    """Is a gateway running with this home? Stale files are removed on the way."""
    if not paths.lock_file.exists():
        if paths.pid_file.exists():
            return Probe(False, stale_pid=_clean(paths))
        return Probe(False)
    fd = os.open(paths.lock_file, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return Probe(True, read_pid(paths))
        return Probe(False, stale_pid=_clean(paths))
    finally:
        os.close(fd)


class InstanceLock:
    """Held by the running gateway: the lock, the pid file, and their clean-up."""

    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths
        self._fd: int | None = None
        #: the pid a stale pid file named when the lock was taken
        self.stale_pid: int | None = None

    def acquire(self) -> None:
        """Take the lock, clean what a dead gateway left, write the pid file.

        :raises AlreadyRunning: another live gateway holds it.
        """
        self.paths.make_run_dir()
        fd = os.open(self.paths.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + _ACQUIRE_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # A probe holds it for an instant; a live gateway pid file says otherwise.
                pid = read_pid(self.paths)
                if (pid is not None and pid_alive(pid)) or time.monotonic() > deadline:
                    os.close(fd)
                    raise AlreadyRunning(pid) from None
                time.sleep(0.02)
        self._fd = fd
        self.stale_pid = _clean(self.paths)
        atomic_write_text(self.paths.pid_file, f"{os.getpid()}\n")

    def release(self) -> None:
        """Remove the pid file and socket, then let go of the lock."""
        if self._fd is None:
            return
        if read_pid(self.paths) == os.getpid():
            self.paths.pid_file.unlink(missing_ok=True)
        self.paths.socket.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = f"/proc/{pid}/stat"
        with open(stat, encoding="ascii", errors="replace") as fh:  # noqa: PTH123
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    return True
