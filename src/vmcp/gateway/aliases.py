"""The name budget: exposed names longer than ``[gateway] max_tool_name`` get a short alias.

An alias is the front of the full exposed name (so the mount prefix stays readable when it
fits), ``_`` and a short hash of the full name. It depends only on the full name, so it is
the same on every gateway and after every restart; the namespace keeps the route from the
alias back to the backend's name, and lengthens the hash in the rare case that the alias is
already taken, so no two exposed names ever collide.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container

#: what MCP allows in a tool name
MCP_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
#: what the common model APIs (OpenAI, Anthropic, Gemini) accept as a function name
MODEL_API_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
#: hex digits of the hash in an alias, at first
HASH_DIGITS = 8


def shorten(full: str, budget: int, taken: Container[str] = ()) -> str:
    """``full`` itself when it fits in ``budget`` characters, else its alias not in ``taken``."""
    if len(full) <= budget:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()
    for digits in range(HASH_DIGITS, min(budget, len(digest) + 1)):
        keep = budget - digits - 1
        candidate = f"{full[:keep].rstrip('_.-')}_{digest[:digits]}"
        if candidate not in taken:
            return candidate
    raise ValueError(f"no free alias for {full!r} within {budget} characters")


def name_problems(name: str, budget: int) -> list[str]:
    """What is wrong with an exposed name for MCP and for the common model APIs."""
    problems = []
    if len(name) > budget:
        problems.append(f"{len(name)} characters, over the budget of {budget}")
    if not MCP_NAME_RE.fullmatch(name):
        problems.append("breaks the MCP name rule [A-Za-z0-9_.-]{1,128}")
    if not MODEL_API_NAME_RE.fullmatch(name):
        problems.append("breaks the model API rule ^[a-zA-Z0-9_-]{1,64}$")
    return problems
