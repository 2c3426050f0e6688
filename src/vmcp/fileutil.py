"""Small file helpers shared by every layer that writes state."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

#: a file modified more recently than this may be rewritten within the same timestamp tick
#: (the kernel's clock for mtimes is coarse) by a file of the same inode number and size
_FRESH_NS = 100_000_000


def change_stamp(st: os.stat_result) -> tuple[int, int, int] | None:
    """What tells this version of a file from any later one: (inode, size, mtime).

    None while the file is too fresh for that: a rewrite in the same tick could reuse the
    freed inode number with the same size and mtime, and go unnoticed. A caller treats None
    as "changed" and reads the file again.
    """
    if time.time_ns() - st.st_mtime_ns < _FRESH_NS:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half.

    The data goes to a temporary file in the same folder, is flushed to disk, then renamed
    over the target.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def held_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block.

    Another process asking for the same lock waits until it is released; ``on_wait`` is
    called once first when it is busy (to tell the user why nothing happens). The kernel
    releases it when the process ends, however it ends.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def state_lock(path: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the lock guarding a read-modify-write of the state file ``path``.

    Every command that reads a state file, changes it and writes it back takes this lock
    first, so two processes never both write over the same old version (a lost update).
    The lock is a hidden file beside ``path``; readers need not take it, since writes are
    atomic.
    """
    return held_lock(path.parent / f".{path.name}.lock")
