"""Per-mount overrides of tools and prompts: the name, description and annotations shown.

Overrides are keyed by the backend's name and applied when the namespace is built; the
namespace's routes keep the backend's name, so calls are reversed without further work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vmcp.config import PromptOverride, ToolOverride


def overridden(
    overrides: Mapping[str, PromptOverride | ToolOverride], item: dict[str, Any]
) -> dict[str, Any] | None:
    """``item`` as shown (a copy when changed, ``item`` itself when not), None when hidden.

    The ``name`` is left as the backend's: the namespace prefixes and routes it.
    """
    override = overrides.get(item.get("name"))  # type: ignore[arg-type]
    if override is None:
        return item
    if override.hidden:
        return None
    shown = dict(item)
    if override.description is not None:
        shown["description"] = override.description
    if override.extend_description:
        base = shown.get("description") or ""
        shown["description"] = f"{base}\n{override.extend_description}" if base \
            else override.extend_description
    annotations = getattr(override, "annotations", None)
    if annotations:
        shown["annotations"] = {**(item.get("annotations") or {}), **annotations}
    return shown


def shown_name(overrides: Mapping[str, PromptOverride | ToolOverride], name: str) -> str:
    """The name a backend's tool or prompt ``name`` is shown under (before the prefix)."""
    override = overrides.get(name)
    return override.name if override is not None and override.name else name


def shown_tools(overrides: Mapping[str, ToolOverride], tools: list[dict[str, Any]]
                ) -> list[dict[str, Any]]:
    """A mount's tools as shown: hidden ones left out, the rest overridden."""
    return [shown for tool in tools if (shown := overridden(overrides, tool)) is not None]
