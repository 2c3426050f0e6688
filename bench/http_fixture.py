"""The direct HTTP reference: the fixture backend served over Streamable HTTP in-process.

Built on aiohttp, the stack the gateway's ``http`` front is built on (the front serves plain
POSTs on a connection protocol of its own: ``vmcp_transport_http.post_connection``), as a
bare aiohttp server with nothing but the endpoint: ``initialize`` opens a session
(``Mcp-Session-Id``), notifications get 202, every request gets one JSON body. A 2026-07-28
request (its ``_meta`` names the protocol version) needs no session: it is the direct modern
backend of the ``modern`` scenario.

Run as ``python -m bench.http_fixture [--port N]``; it prints ``bench: serving http on <url>``
on stderr once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import sys

from aiohttp import web

from bench.fixture_backend import Fixture

SESSION_HEADER = "Mcp-Session-Id"


class FixtureHttpServer:
    """One MCP endpoint answering with :class:`Fixture`."""

    def __init__(self, fixture: Fixture) -> None:
        self.fixture = fixture
        self.sessions: set[str] = set()

    async def post(self, request: web.Request) -> web.Response:
        """Answer one POSTed message."""
        message = json.loads(await request.read())
        session = request.headers.get(SESSION_HEADER)
        headers = {}
        if message.get("method") == "initialize":
            session = secrets.token_urlsafe(32)
            self.sessions.add(session)
            headers[SESSION_HEADER] = session
        elif session not in self.sessions and not _modern(message):
            return web.json_response({"error": "unknown session"}, status=404)
        answer = self.fixture.answer(message)
        if answer is None:
            return web.Response(status=202)
        return web.Response(body=answer, content_type="application/json", headers=headers)

    async def delete(self, request: web.Request) -> web.Response:
        """End a session."""
        self.sessions.discard(request.headers.get(SESSION_HEADER, ""))
        return web.Response(status=204)


def _modern(message: dict[str, object]) -> bool:
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and "io.modelcontextprotocol/protocolVersion" in meta


async def serve(port: int, tools: int) -> None:
    """Listen on 127.0.0.1 until cancelled."""
    server = FixtureHttpServer(Fixture(tools, list_changed=True))
    app = web.Application()
    app.router.add_post("/mcp", server.post)
    app.router.add_delete("/mcp", server.delete)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    port = runner.addresses[0][1]
    print(f"bench: serving http on http://127.0.0.1:{port}/mcp", file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    """Parse the command line and serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tools", type=int, default=1)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(serve(args.port, args.tools))


if __name__ == "__main__":
    main()
