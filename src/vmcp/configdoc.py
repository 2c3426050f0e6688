"""The configuration reference, generated from the pydantic models so it cannot drift.

Every table of :class:`vmcp.config.VmcpConfig` gets a section listing each key with its type,
its default, the limits its validators enforce and the ``#:`` comment written above it in
the model's source. ``vmcp config reference`` prints it; ``docs/configuration.md`` is its
output, and a test keeps the two equal.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from vmcp.config import VmcpConfig

_FIELD_LINE = re.compile(r"^\s+([a-z_][a-z0-9_]*)\s*:")
_LIMITS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))

_INTRO = """\
# Configuration reference

vmcp reads `$VMCP_HOME/config/vmcp.toml` (or `--config PATH`) over the built-in defaults,
and the mount table `servers.toml` beside it. Every key below is optional unless its table
says otherwise. `${VAR}` in a mount's command, arguments, `env`, `cwd`, URL and headers is
filled in from the gateway's environment when the mount starts (`${VMCP_PYTHON}` is the
interpreter running vmcp). An unknown key, table or driver name is an error that names its
file and line and suggests the key meant; `vmcp config show` prints the effective
configuration.

This page is generated from the configuration models (`vmcp config reference`); do not edit
it by hand.
"""


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """The ``#:`` comment lines written above each field in the model's class body (or in
    the class it inherits the field from)."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls is not BaseModel:
            found.update(_own_comments(cls))
    return found


def _own_comments(model: type[BaseModel]) -> dict[str, str]:
    try:
        source = inspect.getsource(model)
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    pending: list[str] = []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        match = _FIELD_LINE.match(line)
        if match and pending:
            found[match.group(1)] = " ".join(pending)
        pending = []
    return found


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        # sorted: typing caches ``Literal[...] | None`` by value set, so the order of the
        # values can be that of another module's equal Literal imported first
        return " / ".join(sorted(json.dumps(a) for a in typing.get_args(annotation)))
    if origin is list:
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if origin is dict:
        return f"table of {_type_name(typing.get_args(annotation)[1])}"
    if annotation is type(None):
        return "unset"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return names.get(annotation, "any") if isinstance(annotation, type) else "any"


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "see its table"
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if value is None:
        return "unset"
    return f"`{json.dumps(value)}`"


def _limits(info: FieldInfo) -> str:
    parts = []
    for meta in info.metadata:
        for attribute, sign in _LIMITS:
            bound = getattr(meta, attribute, None)
            if bound is not None:
                parts.append(f"{sign} {bound}")
    return ", ".join(parts)


def _section(lines: list[str], title: str, model: type[BaseModel],
             nested: list[tuple[str, type[BaseModel]]]) -> None:
    doc = (inspect.getdoc(model) or "").split("\n\n")[0].replace("\n", " ")
    lines += ["", f"## `{title}`", "", doc, ""]
    if model.model_config.get("extra") == "allow":
        lines += ["The driver chosen here may read more keys of this table.", ""]
    lines += ["| key | type | default | notes |", "|---|---|---|---|"]
    comments = _comments(model)
    for name, info in model.model_fields.items():
        if title.startswith("[servers.") and name == "id":
            continue  # the table's key
        notes = "; ".join(p for p in (comments.get(name, ""), _limits(info)) if p)
        lines.append(f"| `{name}` | {_type_name(info.annotation)} | {_default(info)} | "
                     f"{notes.replace('|', '/')} |")
        inner = _unwrap(info.annotation)
        key = ""
        if typing.get_origin(inner) is dict:
            inner, key = _unwrap(typing.get_args(inner)[1]), ".<name>"
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            nested.append((f"{title[:-1]}.{name}{key}]", inner))


def render_reference() -> str:
    """The whole reference, as Markdown."""
    lines = [_INTRO.rstrip("\n")]
    queue: list[tuple[str, type[BaseModel]]] = []
    top_level = []
    for name, info in VmcpConfig.model_fields.items():
        inner = _unwrap(info.annotation)
        if typing.get_origin(inner) is dict:
            value = _unwrap(typing.get_args(inner)[1])
            if isinstance(value, type) and issubclass(value, BaseModel):
                queue.append((f"[{name}.<id>]", value))
            else:
                top_level.append(name)
        elif isinstance(inner, type) and issubclass(inner, BaseModel):
            queue.append((f"[{name}]", inner))
    seen: set[str] = set()
    while queue:
        title, model = queue.pop(0)
        if title in seen:
            continue
        seen.add(title)
        nested: list[tuple[str, type[BaseModel]]] = []
        _section(lines, title, model, nested)
        queue[0:0] = nested
    comments = _comments(VmcpConfig)
    lines += ["", "## Tables read by plugins", ""]
    for name in top_level:
        lines.append(f"- `[{name}]`: {comments.get(name) or 'per-driver settings'}")
    return "\n".join(lines) + "\n"
