"""The plugin's hooks: contribute the tracing middleware when tracing is on, flush at stop.

Off (the default without an OTLP endpoint), no middleware is contributed, and nothing of
OpenTelemetry is even imported.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from vmcp.hookspecs import hookimpl

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway
    from vmcp.routing.middleware import Middleware
    from vmcp_trace_otel.tracing import Tracing

#: the tracing of each gateway that has it, shut down when it stops
_tracings: dict[int, Tracing] = {}


@hookimpl(tryfirst=True)
def vmcp_request_middleware(gateway: Gateway) -> Middleware | None:
    """Trace every routed call when ``[otel]`` or the environment turns tracing on."""
    # Imported here: every command loads the hook plugins, and only a gateway reads [otel].
    from vmcp_trace_otel.settings import OtelSettings

    settings = OtelSettings.from_table(gateway.config.otel)
    if not settings.active():
        return None
    from vmcp_trace_otel.tracing import Tracing

    tracing = Tracing(settings)
    _tracings[id(gateway)] = tracing
    return tracing.middleware


@hookimpl
async def vmcp_gateway_stopping(gateway: Gateway) -> None:
    """Export the spans still buffered."""
    tracing = _tracings.pop(id(gateway), None)
    if tracing is not None:
        await asyncio.to_thread(tracing.shutdown)
