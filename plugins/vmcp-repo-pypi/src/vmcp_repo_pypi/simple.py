"""Reading a PyPI-compatible index: the project list of the simple API (PEP 503 / PEP 691)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


def normalize(name: str) -> str:
    """A project name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._inside = tag == "a"

    def handle_endtag(self, tag: str) -> None:
        self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside and data.strip():
            self.names.append(data.strip())


def project_names(body: bytes) -> list[str]:
    """The project names of a simple-API root page, JSON or HTML."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        parser = _Anchors()
        parser.feed(text)
        return parser.names
    projects = data.get("projects", []) if isinstance(data, dict) else []
    return [p["name"] for p in projects if isinstance(p, dict) and isinstance(p.get("name"), str)]
