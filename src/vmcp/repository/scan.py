"""Finding manifests in a folder tree (a git checkout, a local directory).

Two layouts are recognised, and may be mixed: any ``server.json`` file, and any folder holding
an ``install.json`` (with an optional ``MANIFEST.md`` beside it). Hidden folders (``.git``) are
skipped and symbolic links are not followed, so a repository cannot point the scan outside
itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from vmcp.repository.base import RawManifest

MAX_MANIFEST_BYTES = 1024 * 1024
_NAMES = ("server.json", "install.json")


def scan_tree(root: Path) -> list[RawManifest]:
    """Every manifest under ``root``, with locations relative to it, in a stable order.

    A file too large or not UTF-8 is returned with an ``error``, so it is reported like any
    other invalid manifest.
    """
    found: list[RawManifest] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        for name in _NAMES:
            path = here / name
            if name not in files or path.is_symlink():
                continue
            text, error = _read(path)
            readme = ""
            if name == "install.json" and "MANIFEST.md" in files:
                readme, readme_error = _read(here / "MANIFEST.md")
                error = error or readme_error
            found.append(RawManifest(
                location=path.relative_to(root).as_posix(),
                kind=name,
                text=text,
                readme=readme,
                error=error,
            ))
    return found


def _read(path: Path) -> tuple[str, str]:
    """The file's text and an empty error, or no text and why it was not read."""
    if path.is_symlink() or path.stat().st_size > MAX_MANIFEST_BYTES:
        return "", f"{path.name} is a symbolic link or larger than {MAX_MANIFEST_BYTES} bytes"
    try:
        return path.read_text("utf-8"), ""
    except UnicodeDecodeError:
        return "", f"{path.name} is not UTF-8 text"
