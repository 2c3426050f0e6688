"""Resource URI aliases and RFC 6570 template matching."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

ALIAS_SCHEME = "vmcp://"
_EXPR = re.compile(r"\{([+#./;?&]?)([^}]*)\}")


def alias(mount_id: str, uri: str) -> str:
    """The reversible gateway URI for a backend URI that another mount already owns."""
    return f"{ALIAS_SCHEME}{mount_id}/{quote(uri, safe='')}"


def unalias(uri: str) -> tuple[str, str] | None:
    """``(mount_id, backend_uri)`` for a gateway alias URI, else None."""
    if not uri.startswith(ALIAS_SCHEME):
        return None
    mount_id, sep, rest = uri[len(ALIAS_SCHEME):].partition("/")
    if not sep or not mount_id:
        return None
    return mount_id, unquote(rest)


def template_regex(template: str) -> re.Pattern[str]:
    """A regex matching the URIs an RFC 6570 (level 1-3) template can expand to."""
    parts: list[str] = []
    pos = 0
    for match in _EXPR.finditer(template):
        parts.append(re.escape(template[pos:match.start()]))
        operator = match.group(1)
        if operator in ("+", "#"):
            parts.append(f"{re.escape(operator) if operator == '#' else ''}.*")
        elif operator in ("?", "&"):
            parts.append(r"(?:[?&][^#]*)?")
        elif operator in ("/", ".", ";"):
            parts.append(f"(?:{re.escape(operator)}[^/?#]*)*")
        else:
            parts.append(r"[^/?#]*")
        pos = match.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("".join(parts) + r"\Z")
