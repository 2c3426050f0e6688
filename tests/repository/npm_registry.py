"""A real local npm registry serving one package of ours: a tiny stdio MCP server in Node.

The package has no dependencies; its ``index.js`` answers ``initialize``, ``tools/list`` and
``tools/call`` over newline-delimited JSON-RPC. The registry serves the package document
(``GET /hello-mcp``) and the tarball ``npm pack`` made.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from vmcp.testing import local_http_server

PACKAGE = "hello-mcp"

_SERVER_JS = r"""#!/usr/bin/env node
const readline = require("readline");
const rl = readline.createInterface({ input: process.stdin });
const send = (msg) => process.stdout.write(JSON.stringify(msg) + "\n");
rl.on("line", (line) => {
  const msg = JSON.parse(line);
  if (msg.id === undefined) return;
  if (msg.method === "initialize") {
    send({ jsonrpc: "2.0", id: msg.id, result: {
      protocolVersion: msg.params.protocolVersion, capabilities: { tools: {} },
      serverInfo: { name: "hello-mcp", version: "1.0.0" } } });
  } else if (msg.method === "tools/list") {
    send({ jsonrpc: "2.0", id: msg.id, result: { tools: [{ name: "hello",
      description: "Greets", inputSchema: { type: "object", properties: {} } }] } });
  } else if (msg.method === "tools/call") {
    send({ jsonrpc: "2.0", id: msg.id, result: { content: [{ type: "text",
      text: "hello from node " + (process.env.HELLO_NAME || "?") }] } });
  } else {
    send({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "no " + msg.method } });
  }
});
"""


def pack(workdir: Path) -> Path:
    """Write the package and ``npm pack`` it; return the tarball."""
    src = workdir / "hello-src"
    src.mkdir()
    (src / "package.json").write_text(json.dumps({
        "name": PACKAGE, "version": "1.0.0", "bin": {PACKAGE: "index.js"}, "license": "MIT"}))
    (src / "index.js").write_text(_SERVER_JS)
    out = workdir / "packed"
    out.mkdir()
    subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(out), str(src)],
                   check=True, capture_output=True, timeout=120, cwd=workdir)
    return next(out.glob("*.tgz"))


@contextmanager
def serve_registry(tarball: Path) -> Iterator[str]:
    """Serve the package document and tarball on 127.0.0.1 and a free port."""
    data = tarball.read_bytes()
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            if self.path.rstrip("/") == f"/{PACKAGE}":
                body = json.dumps({"name": PACKAGE, "dist-tags": {"latest": "1.0.0"},
                                   "versions": {"1.0.0": {
                                       "name": PACKAGE, "version": "1.0.0",
                                       "bin": {PACKAGE: "index.js"},
                                       "dist": {"tarball": f"{base}/{PACKAGE}-1.0.0.tgz",
                                                "shasum": hashlib.sha1(data).hexdigest(),
                                                "integrity": integrity}}}}).encode()
                kind = "application/json"
            elif self.path == f"/{PACKAGE}-1.0.0.tgz":
                body, kind = data, "application/octet-stream"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with local_http_server(Handler) as url:
        yield f"{url}/"
