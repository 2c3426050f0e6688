"""Version strings: which ones are safe to use as folder names, and how they sort.

Manifests use semantic versions (``1.2.0``, ``2.0.0-beta.1``) or PEP 440 ones (``1.2.0rc1``).
:func:`version_key` orders both well enough to pick "the newest": numeric parts compare as
numbers, and a pre-release sorts before its final release.
"""

from __future__ import annotations

import re

VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$")
_PRE_RE = re.compile(r"(?:a|b|c|rc|alpha|beta|pre|preview|dev)\d*", re.IGNORECASE)


def check_version(value: str) -> str:
    """Return ``value`` if it is a usable version string, else raise ``ValueError``."""
    if not VERSION_RE.fullmatch(value) or ".." in value:
        raise ValueError(
            "must be 1-64 characters from letters, digits, '.', '+', '_', '-' "
            "and start with a letter or digit"
        )
    return value


def version_key(version: str) -> tuple[tuple[int, ...], int, tuple[str, ...]]:
    """A sort key: release numbers, then final-before-pre-release, then the pre-release tag."""
    text = version.lower().lstrip("v").split("+", 1)[0]
    match = re.match(r"\d+(?:\.\d+)*", text)
    numbers = tuple(int(part) for part in match.group(0).split(".")) if match else ()
    while numbers and numbers[-1] == 0:
        numbers = numbers[:-1]
    rest = text[match.end():] if match else text
    rest = rest.lstrip(".-_")
    if not rest or re.fullmatch(r"post\d*", rest):
        return numbers, 1, (rest,)
    is_pre = bool(_PRE_RE.match(rest))
    parts = tuple(re.findall(r"[a-z]+|\d+", rest))
    padded = tuple(part.zfill(12) if part.isdigit() else part for part in parts)
    return numbers, 0 if is_pre else 1, padded
