"""Responses started before their request runs, so that no load balancer runs it twice.

Behind a load balancer that sends a request again elsewhere when its instance closed the
connection without a byte of response (HAProxy's ``retry-on empty-response``, which the
multi-instance configuration uses so that a call in flight on an instance that died is run
again), only a request whose second run changes nothing may stay unanswered while it runs.
With ``[cluster]`` the front asks the host (:meth:`~vmcp.transports.base.FrontHost.
replay_safe`) and starts the response of any other request -- its headers, and on an SSE
reply its priming event -- before the request is delivered: once it may have had an effect,
the balancer sees a response begun and never repeats it; its client gets an error if the
instance dies. A JSON reply started so is 200 with its JSON-RPC error, if any, in the body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from vmcp_transport_http.messages import JSON_TYPE
from vmcp_transport_http.streams import EventStreamResponse


def must_commit(replay_safe: Callable[[dict[str, Any]], bool],
                requests: Iterable[dict[str, Any]]) -> bool:
    """Whether a POST carrying ``requests`` must have its response started before they run."""
    return not all(replay_safe(message) for message in requests)


async def start(request: web.BaseRequest, headers: dict[str, str], sse: bool,
                first: bytes = b"") -> web.StreamResponse:
    """Send a response's headers now (and ``first``, an SSE priming event): an SSE stream,
    or a JSON body to come."""
    # with a priming event, the headers leave with it, in one write
    response = (EventStreamResponse if first else web.StreamResponse)(headers=headers)
    if not sse:
        response.content_type = JSON_TYPE
        response.charset = "utf-8"
    await response.prepare(request)
    if first:
        await response.write(first)
    return response
