"""Where in a TOML file a setting was written, and the setting a misspelt key meant.

``tomllib`` keeps no positions, so :func:`line_of` reads the text again: it follows table
headers (``[a.b]``, ``[[a.b]]``) and keys (``c = ...``, dotted ``c.d = ...``) and returns the
line that defines a dotted path, or the nearest line above it (the table, or the inline
table holding it). :func:`fields_at` walks pydantic models along such a path to list the
keys that are allowed there, and :func:`did_you_mean` picks the closest one.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

_HEADER = re.compile(r"^\s*\[\[?\s*(.+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
                  r"""(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_PART = re.compile(r"""[A-Za-z0-9_-]+|"((?:[^"\\]|\\.)*)"|'([^']*)'""")


def _parts(dotted: str) -> tuple[str, ...]:
    out = []
    for match in _PART.finditer(dotted):
        if match.group(1) is not None:
            out.append(match.group(1))
        elif match.group(2) is not None:
            out.append(match.group(2))
        else:
            out.append(match.group(0))
    return tuple(out)


def line_of(text: str, path: Sequence[str | int]) -> int | None:
    """The 1-based line defining ``path`` (e.g. ``("servers", "x", "command")``) in ``text``.

    The longest prefix of ``path`` that is written somewhere is what is found; None when
    not even its first part is.
    """
    wanted = tuple(str(p) for p in path)
    best: tuple[int, int] | None = None  # (matched length, line)
    table: tuple[str, ...] = ()
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.count('"""') % 2 or line.count("'''") % 2:
            in_multiline = not in_multiline
            if not in_multiline:
                continue
        elif in_multiline:
            continue
        header = _HEADER.match(line)
        if header and not _KEY.match(line):
            table = _parts(header.group(1))
            found = table
        else:
            key = _KEY.match(line)
            if not key:
                continue
            found = table + _parts(key.group(1))
        matched = 0
        for have, want in zip(found, wanted, strict=False):
            if have != want:
                break
            matched += 1
        if matched == len(found) or matched == len(wanted):
            if matched and (best is None or matched > best[0]):
                best = (matched, number)
            if matched == len(wanted):
                break
    return best[1] if best else None


def _unwrap(annotation: Any) -> Any:
    """The model or container type behind ``X | None``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def fields_at(model: type[BaseModel], path: Sequence[str | int]) -> list[str]:
    """The keys model ``model`` allows at the table ``path`` ([] when it is not a model)."""
    current: Any = model
    expect_key = False
    for part in path:
        if expect_key:
            expect_key = False
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = current.model_fields.get(str(part))
        if info is None:
            return []
        current = _unwrap(info.annotation)
        if typing.get_origin(current) is dict:
            current = _unwrap(typing.get_args(current)[1])
            expect_key = True
    if expect_key or not (isinstance(current, type) and issubclass(current, BaseModel)):
        return []
    return list(current.model_fields)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""`` when none is close."""
    import difflib  # only when a name is wrong

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
