"""A real local MCP registry for the http source tests (paginated API, index, failures)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

PAGE_CAP = 3


def make_servers(count: int) -> list[dict[str, Any]]:
    """``count`` valid server.json documents."""
    return [
        {"name": f"example/server-{n:02d}", "description": f"Server number {n}",
         "version": "1.0.0", "remotes": [{"type": "sse", "url": f"https://s{n}.example/sse"}]}
        for n in range(count)
    ]


class Registry(BaseHTTPRequestHandler):
    """``/v0/servers`` paginated (at most PAGE_CAP per page), ``/index.json``, failures."""

    servers: list[dict[str, Any]] = []
    requests: list[str] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        type(self).requests.append(self.path)
        if url.path == "/index.json":
            self._json(200, self.servers[:4])
        elif url.path == "/v0/servers":
            limit = min(int(query.get("limit", ["100"])[0]), PAGE_CAP)
            start = int(query.get("cursor", ["0"])[0])
            page = self.servers[start:start + limit]
            items = [{"server": s, "_meta": {"io.modelcontextprotocol.registry/official": {
                "status": "deleted" if s["name"].endswith("-05") else "active"}}} for s in page]
            more = start + limit < len(self.servers)
            meta = {"count": len(items), **({"nextCursor": str(start + limit)} if more else {})}
            self._json(200, {"servers": items, "metadata": meta})
        elif url.path == "/loop/v0/servers":
            self._json(200, {"servers": [], "metadata": {"nextCursor": "same"}})
        elif url.path == "/odd/v0/servers":
            self._json(200, {"items": []})
        else:
            self._json(500, {"error": "boom"})
