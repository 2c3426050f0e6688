"""A small TOML writer for configuration data (``tomllib`` only reads).

It handles what configuration holds: tables, strings, booleans, numbers and lists of those.
``None`` values are left out, as TOML has no null. The first two levels of tables become
``[section]`` headers; deeper ones (``env``, ``headers``) are written inline.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SECTION_DEPTH = 2


def dumps(data: Mapping[str, Any]) -> str:
    """Render ``data`` as a TOML document that ``tomllib.loads`` reads back equal."""
    lines: list[str] = []
    _table(lines, [], data)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(lines: list[str], path: list[str], table: Mapping[str, Any]) -> None:
    nested = len(path) < _SECTION_DEPTH
    sections = {k: v for k, v in table.items() if nested and isinstance(v, Mapping)}
    values = {k: v for k, v in table.items() if k not in sections and v is not None}
    if path and (values or not sections):
        lines.extend(["", "[" + ".".join(_key(p) for p in path) + "]"])
    lines.extend(f"{_key(k)} = {_value(v)}" for k, v in values.items())
    for key, sub in sections.items():
        _table(lines, [*path, key], sub)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    # JSON escapes are valid TOML basic-string escapes; TOML also forbids a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007F")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        items = [f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
