"""The built-in plugin that keeps the audit trail (registered in the ``vmcp`` entry-point
group like any other, so the kernel has no special path for it).

With ``[audit] enabled = false`` and no plugin contributing a sink it contributes no
middleware, and routed calls pay nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmcp.hookspecs import hookimpl

if TYPE_CHECKING:
    from vmcp.audit.middleware import Sink
    from vmcp.audit.trail import TrailWriter
    from vmcp.gateway.gateway import Gateway
    from vmcp.routing.middleware import Middleware

#: the writer of each gateway with a trail file, closed when it stops
_writers: dict[int, TrailWriter] = {}


@hookimpl(tryfirst=True)
def vmcp_request_middleware(gateway: Gateway) -> Middleware | None:
    """Audit every routed call (outermost: its latency is the whole call's)."""
    # Imported here, and the trail and middleware only when there is auditing to do: loading
    # hook plugins (every CLI command does) and starting a gateway without it stay cheap.
    from vmcp.plugins import get_plugin_manager

    sinks: list[Sink] = [
        s for s in get_plugin_manager().hook.vmcp_audit_sink(gateway=gateway) if s is not None]
    settings = gateway.config.audit
    if settings.enabled:
        from vmcp.audit.trail import TrailWriter

        writer = TrailWriter(settings)
        _writers[id(gateway)] = writer
        sinks.insert(0, writer.write)
    if not sinks:
        return None
    from vmcp.audit.middleware import audit_middleware

    return audit_middleware(sinks)


@hookimpl
def vmcp_gateway_stopping(gateway: Gateway) -> None:
    """Write what is queued and close the trail file."""
    writer = _writers.pop(id(gateway), None)
    if writer is not None:
        writer.close()
