"""Unpacking refuses every way out of the target folder, before writing anything."""

from __future__ import annotations

import io
import stat
import zipfile
from contextlib import nullcontext
from pathlib import Path

import pytest

from vmcp.repository.archive import extract_zip, verify_sha256
from vmcp.repository.errors import InstallError


def archive(*entries: tuple[str, str, int]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, text)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name, mode",
    [("/etc/evil", 0o644), ("a/../../evil", 0o644), ("C:/evil", 0o644),
     ("link", stat.S_IFLNK | 0o777)],
)
def test_escaping_entries_are_refused_and_nothing_is_written(
    tmp_path: Path, name: str, mode: int
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    data = archive(("ok.txt", "fine", 0o644), (name, "/etc/passwd", mode))
    with pytest.raises(InstallError):
        extract_zip(data, dest)
    assert list(dest.iterdir()) == []


def test_files_and_execute_bits_are_kept(tmp_path: Path) -> None:
    extract_zip(archive(("bin/run", "#!/bin/sh\n", 0o755), ("doc.txt", "x", 0o644)), tmp_path)
    assert (tmp_path / "bin" / "run").stat().st_mode & 0o111
    assert (tmp_path / "doc.txt").read_text() == "x"


def test_hash_mismatch_names_both_digests() -> None:
    with pytest.raises(InstallError, match=r"expected 0+, got"):
        verify_sha256(b"data", "0" * 64, "bundle")


@pytest.mark.parametrize(
    "entries, message",
    [((("x", "file", 0o644), ("x/y", "inner", 0o644)),
      "archive entry 'x' is a file, but 'x/y' needs it to be a folder"),
     ((("x/y/z", "inner", 0o644), ("x/y", "file", 0o644)),
      "archive entry 'x/y' is a file, but 'x/y/z' needs it to be a folder"),
     ((("x/", "", 0o755), ("x", "file", 0o644)),
      "archive entry 'x' is a file, but 'x/' needs it to be a folder"),
     ((("a.txt", "one", 0o644), ("a.txt", "two", 0o644)), "archive names 'a.txt' twice")],
)
def test_a_name_used_as_file_and_folder_is_refused_before_writing(
    tmp_path: Path, entries: tuple[tuple[str, str, int], ...], message: str
) -> None:
    with pytest.warns(UserWarning) if entries[0][0] == entries[1][0] else nullcontext():
        data = archive(*entries)
    with pytest.raises(InstallError) as refused:
        extract_zip(data, tmp_path)
    assert str(refused.value) == message
    assert list(tmp_path.iterdir()) == []
