"""One pooled aiohttp client session per transport, shared by all its backend connections."""

from __future__ import annotations

import aiohttp

#: seconds an idle kept-alive connection to a backend stays open
KEEPALIVE_TIMEOUT = 60.0


class ClientPool:
    """Lends a shared :class:`aiohttp.ClientSession` (keep-alive, no connection cap).

    The session is created by the first :meth:`acquire` and closed when the last holder
    calls :meth:`release`. Cookies are never stored: mounts on one host must not share them.
    """

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._holders = 0

    def acquire(self) -> aiohttp.ClientSession:
        """The shared session; pair every call with :meth:`release`."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_TIMEOUT),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
            )
        self._holders += 1
        return self._session

    async def release(self) -> None:
        """Give the session back; the last holder closes it."""
        self._holders -= 1
        if self._holders == 0 and self._session is not None:
            session, self._session = self._session, None
            await session.close()
