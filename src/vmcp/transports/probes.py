"""The health probes every network front answers, without authentication.

``GET /livez``: 200 while the process serves at all. ``GET /readyz``: 200 when the gateway
is ready (:meth:`FrontHost.readiness` is empty), 503 naming why not. Plain text, never
cached. What they may say is limited to what an unauthenticated caller may learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vmcp.transports.base import FrontHost

LIVEZ = "/livez"
READYZ = "/readyz"
PROBE_PATHS = (LIVEZ, READYZ)
PROBE_HEADERS = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}


def probe_answer(host: FrontHost, path: str) -> tuple[int, str]:
    """The status and body answering the probe at ``path`` (one of :data:`PROBE_PATHS`)."""
    if path == LIVEZ:
        return 200, "ok\n"
    problems = host.readiness()
    if problems:
        return 503, "not ready: " + "; ".join(problems) + "\n"
    return 200, "ok\n"
