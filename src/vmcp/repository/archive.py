"""Checking downloads and unpacking them without ever writing outside the target folder."""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from pathlib import Path, PurePosixPath

from vmcp.repository.errors import InstallError

MAX_UNPACKED_BYTES = 2 * 1024 * 1024 * 1024
MAX_MEMBERS = 50_000


def verify_sha256(data: bytes, expected: str, what: str) -> None:
    """Raise :class:`InstallError` unless ``data`` hashes to ``expected`` (hex)."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.lower():
        raise InstallError(f"{what}: sha256 mismatch (expected {expected.lower()}, got {actual})")


def extract_zip(data: bytes, dest: Path) -> None:
    """Unpack a zip archive into ``dest``.

    Refused, before anything is written: absolute names, names with ``..``, symbolic links,
    a file named twice or also used as a folder (``x`` and ``x/y``), more than
    :data:`MAX_MEMBERS` entries or more than :data:`MAX_UNPACKED_BYTES` unpacked.
    Execute bits recorded in the archive are kept.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise InstallError(f"not a zip archive: {exc}") from exc
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise InstallError(f"archive has more than {MAX_MEMBERS} entries")
        if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
            raise InstallError(f"archive unpacks to more than {MAX_UNPACKED_BYTES} bytes")
        root = dest.resolve()
        targets = [(_target(root, m), m) for m in members]
        _check_layout(root, targets)
        for target, member in targets:
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, target.open("wb") as out:
                while chunk := src.read(1024 * 1024):
                    out.write(chunk)
            mode = (member.external_attr >> 16) & 0o777
            if mode & 0o111:
                target.chmod(0o755)


def _check_layout(root: Path, targets: list[tuple[Path, zipfile.ZipInfo]]) -> None:
    """Refuse a file that another entry also names, or that another entry needs as a folder."""
    files: dict[Path, str] = {}
    folders: dict[Path, str] = {}
    for target, member in targets:
        if not member.is_dir():
            if target in files:
                raise InstallError(f"archive names {member.filename!r} twice")
            files[target] = member.filename
        else:
            folders.setdefault(target, member.filename)
        for parent in target.parents:
            if parent == root:
                break
            folders.setdefault(parent, member.filename)
    for target, name in files.items():
        if target in folders:
            raise InstallError(
                f"archive entry {name!r} is a file, but {folders[target]!r} needs it to be a "
                "folder")


def _target(root: Path, member: zipfile.ZipInfo) -> Path:
    name = member.filename.replace("\\", "/")
    pure = PurePosixPath(name)
    unsafe = not pure.parts or pure.is_absolute() or ".." in pure.parts or ":" in pure.parts[0]
    if unsafe:
        raise InstallError(f"archive entry {member.filename!r} points outside the target folder")
    if stat.S_ISLNK(member.external_attr >> 16):
        raise InstallError(f"archive entry {member.filename!r} is a symbolic link")
    target = (root / pure).resolve()
    if not target.is_relative_to(root):
        raise InstallError(f"archive entry {member.filename!r} points outside the target folder")
    return target
