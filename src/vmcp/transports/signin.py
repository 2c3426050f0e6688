"""How a back-side transport says that a person must sign in before it can connect.

A transport whose backend needs a person's grant (OAuth authorization code) raises
:class:`SignInNeeded` from :meth:`~vmcp.transports.base.Transport.connect` instead of opening
a connection that could only be refused. The exception's message names the command that
signs in; when the transport can also run the sign-in itself it carries a ``start`` that
prepares one :class:`SignInFlow`: the URL a person opens, and the wait for the grant. The
gateway asks the caller's client to open that URL (URL-mode elicitation) when the client
can, and makes the connection once the grant exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Protocol


class SignInFlow(Protocol):
    """One sign-in in progress: a person opens :attr:`url`; :meth:`finish` waits for the
    result and stores the grant; :meth:`aclose` releases what the flow holds."""

    #: where the person signs in and consents
    url: str
    #: what the person is told the sign-in is for
    message: str

    async def finish(self) -> None:
        """Wait (bounded in time) until the sign-in is done and its grant is stored.

        :raises SignInNeeded: it failed, was refused, or took too long (the message says so).
        """

    async def aclose(self) -> None:
        """Stop waiting (idempotent)."""


class SignInNeeded(Exception):
    """A connection needs a person's grant that does not exist (or can no longer be
    renewed); ``str()`` says which command signs in."""

    def __init__(
        self, message: str, start: Callable[[], Awaitable[SignInFlow]] | None = None,
        key: Hashable = None, timeout: float | None = None, lost: bool = False,
    ) -> None:
        super().__init__(message)
        #: the grant is gone or refused for good: a connection using it cannot work
        self.lost = lost
        #: prepares a sign-in the gateway can hand to the caller (None: only the command)
        self.start = start
        #: whose grant it is (callers with the same key share one sign-in in flight)
        self.key = key
        #: seconds the whole sign-in may take
        self.timeout = timeout
