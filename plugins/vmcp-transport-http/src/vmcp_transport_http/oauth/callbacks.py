"""The gateway's HTTP front as the redirect target of the sign-ins it asks clients to open.

When the gateway serves an HTTP front on a loopback address (and not on a port shared by
several workers, one of which could receive another's redirect), a person's browser is sent
back to ``<front>/oauth/callback`` instead of a listener started for each sign-in. Each
sign-in waiting there is known by its ``state``, fresh and unguessable; a response with
any other ``state`` is refused, and one sign-in's response never reaches another.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web

if TYPE_CHECKING:
    from vmcp_transport_http.front_app import FrontApp

#: where the HTTP front takes authorization responses
CALLBACK_PATH = "/oauth/callback"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_DONE_PAGE = "<!doctype html><title>vmcp</title><p>Signed in. You can close this window.</p>"
_FAILED_PAGE = "<!doctype html><title>vmcp</title><p>Sign-in failed: {}</p>"


def answer_page(params: dict[str, str]) -> web.Response:
    """The page a browser is shown once its authorization response was taken."""
    error = params.get("error")
    return web.Response(text=_FAILED_PAGE.format(error) if error else _DONE_PAGE,
                        content_type="text/html",
                        headers={"X-Frame-Options": "DENY", "Cache-Control": "no-store"})


class FrontCallbacks:
    """The sign-ins waiting for their authorization response at the HTTP front."""

    def __init__(self) -> None:
        #: the front's ``scheme://host:port`` once it serves (None: no usable HTTP front)
        self.base: str | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, str]]] = {}

    def install(self, app: FrontApp) -> None:
        """Serve :data:`CALLBACK_PATH` on a front."""
        app.add_route("GET", CALLBACK_PATH, self._callback)

    def serving(self, url: str) -> None:
        """A front serves at ``url``: the first one on a loopback address (a redirect URI
        must be loopback or HTTPS) becomes where browsers come back to."""
        parts = urlsplit(url)
        if self.base is None and parts.hostname in _LOOPBACK:
            self.base = f"{parts.scheme}://{parts.netloc}"

    def stopped(self, url: str) -> None:
        """The front serving at ``url`` no longer serves."""
        parts = urlsplit(url)
        if self.base == f"{parts.scheme}://{parts.netloc}":
            self.base = None

    def expect(self, state: str) -> asyncio.Future[dict[str, str]]:
        """The authorization response of the sign-in with ``state``, when it comes."""
        future: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._waiting[state] = future
        return future

    def forget(self, state: str) -> None:
        """That sign-in no longer waits."""
        self._waiting.pop(state, None)

    async def _callback(self, request: web.BaseRequest) -> web.Response:
        params = dict(request.query)
        future = self._waiting.pop(params.get("state", ""), None)
        if future is None:
            return web.Response(status=400, text="unexpected state", content_type="text/plain")
        if not future.done():
            future.set_result(params)
        return answer_page(params)


#: the one table of the process (its HTTP fronts and the sign-ins share it)
front_callbacks = FrontCallbacks()
