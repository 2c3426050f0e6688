"""Hook specifications: the contract between vmcp and plugins that take part in every request.

A plugin is a module (or object) registered under the entry-point group ``vmcp``::

    [project.entry-points.vmcp]
    audit = "vmcp_audit.hooks"

and implements any of the hooks below with the :data:`hookimpl` marker::

    from vmcp import hookimpl

    @hookimpl
    def vmcp_gateway_started(gateway):
        ...

Rules every spec follows:

* Hooks are called with keyword arguments, so an implementation may accept any subset of a
  spec's arguments, and specs only ever grow by adding arguments.
* Specs are synchronous. Where a spec says "may return an awaitable", an ``async def``
  implementation is allowed and the kernel awaits its result. Such hooks are never
  ``firstresult``.
* No hook runs per message. Per-request behaviour (middleware, visibility filters) is
  *contributed* once at start-up and composed by the kernel into one chain.

Providing a part (a transport, cache backend, balancer, repository source or auth provider)
is not done with hooks: register a *driver* in the matching ``vmcp.<kind>s`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import click
import pluggy

if TYPE_CHECKING:
    from vmcp.config import MountConfig
    from vmcp.gateway.gateway import Gateway
    from vmcp.routing.middleware import Middleware, VisibilityFilter

PROJECT = "vmcp"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -------------------------------------------------------------------------
# Command line
# -------------------------------------------------------------------------


@hookspec
def vmcp_register_commands(cli: click.Group) -> None:
    """Add commands or command groups to the ``vmcp`` command line.

    :param cli: the root ``vmcp`` click group; call ``cli.add_command(...)`` on it, or
        ``cli.add_lazy_command(name, "module:attribute")`` to import the command's module
        only when that command is used (every ``vmcp`` command, ``vmcp start`` included,
        runs this hook: a command that imports much slows them all).

    Called once when the CLI is built, for every plugin. A command whose name is already
    taken is reported as a plugin error and skipped.
    """


# -------------------------------------------------------------------------
# Gateway lifecycle
# -------------------------------------------------------------------------


@hookspec
def vmcp_gateway_started(gateway: Gateway) -> Awaitable[None] | None:
    """The gateway has mounted its servers and is about to serve front clients.

    :param gateway: the running gateway; read its ``mounts`` and ``config``.

    May return an awaitable. Use it to open pools, start background tasks or announce the
    gateway somewhere. An exception is logged and does not stop the gateway.
    """


@hookspec
def vmcp_gateway_stopping(gateway: Gateway) -> Awaitable[None] | None:
    """The gateway is shutting down; front clients are gone, backends still run.

    :param gateway: the gateway being stopped.

    May return an awaitable, which is awaited with the configured shutdown grace period.
    The reverse of :func:`vmcp_gateway_started`.
    """


@hookspec
def vmcp_server_mounted(gateway: Gateway, mount_id: str) -> Awaitable[None] | None:
    """A mount came up: its backend answered ``initialize`` and its lists were read.

    :param gateway: the running gateway.
    :param mount_id: the id of the mount (see ``gateway.mounts[mount_id]``).

    May return an awaitable. Called again after a backend restarts.
    """


@hookspec
def vmcp_server_unmounted(gateway: Gateway, mount_id: str) -> Awaitable[None] | None:
    """A mount went away: it was unmounted, or its backend died.

    :param gateway: the running gateway.
    :param mount_id: the id of the mount that left.

    May return an awaitable.
    """


# -------------------------------------------------------------------------
# Per-request behaviour, contributed once at start-up
# -------------------------------------------------------------------------


@hookspec
def vmcp_request_middleware(gateway: Gateway) -> Middleware | None:
    """Contribute a wrapper around every routed request.

    :param gateway: the gateway being started.
    :returns: an async callable ``middleware(request, call_next) -> dict`` or None.

    ``request`` is a :class:`vmcp.routing.middleware.RoutedRequest` (caller, mount, method,
    params); ``call_next(request)`` forwards it and returns the JSON-RPC result ``dict`` or
    raises :class:`vmcp.protocol.errors.RpcError`. A middleware may inspect, rewrite, answer
    without forwarding, or time the call (audit, metrics, rate limits).

    Collected once at start-up; the kernel composes the chain so that implementations marked
    ``tryfirst`` are outermost. When no plugin contributes one, routed calls take a path with
    no middleware overhead at all.
    """


@hookspec
def vmcp_visibility_filter(gateway: Gateway) -> VisibilityFilter | None:
    """Contribute a filter deciding what a caller may see and use.

    :param gateway: the gateway being started.
    :returns: a callable ``visible(caller, mount_id, kind, name) -> bool`` or None, where
        ``kind`` is ``"tool"``, ``"prompt"``, ``"resource"`` or ``"resource_template"`` and
        ``name`` the backend's own name or URI.

    Collected once at start-up. An item is shown (and may be used) only when every filter
    returns True. Hidden items behave exactly like unknown ones: calls to them get the error
    an unknown name gets.
    """


@hookspec
def vmcp_audit_sink(gateway: Gateway) -> Callable[[dict[str, Any]], None] | None:
    """Contribute a receiver of the audit trail: one record per routed call.

    :param gateway: the gateway being started.
    :returns: a callable ``sink(record)`` or None. ``record`` is a ``dict`` of JSON values:
        ``time`` (ISO 8601, UTC), ``caller``, ``persona``, ``session``, ``mount``,
        ``method``, ``tool`` (for ``tools/call``), ``target`` (a prompt name or resource
        URI), ``arguments`` (``sha256:<hex>`` of the canonical JSON of the arguments, never
        the arguments), ``outcome`` (``ok``, ``tool_error``, ``error <code>``, ``timeout``,
        ``cancelled``) and ``latency_ms``.

    Collected once at start-up. Sinks run on the event loop as each call ends: hand the
    record to a queue or a task, never block. Records go to every sink whether or not
    ``[audit]`` writes the trail file.
    """


# -------------------------------------------------------------------------
# Backends
# -------------------------------------------------------------------------


@hookspec
def vmcp_backend_prepare(
    mount: MountConfig, env: dict[str, str], headers: dict[str, str]
) -> None:
    """Add environment variables or credentials to a backend before it starts.

    :param mount: the mount's configuration (read only).
    :param env: the environment a stdio backend will be spawned with; add keys to it.
    :param headers: the HTTP/WebSocket headers a remote backend will be sent; add keys to it.

    Called every time a backend is started or restarted. Values put here are treated as
    secrets: they are never logged. Never copy a front client's credentials here.
    """



@hookspec
def vmcp_sign_ins(mount: MountConfig) -> list[dict[str, Any]] | None:
    """Who is signed in to ``mount``, a backend the plugin signs in to (OAuth).

    :returns: one row per grant owner: ``persona`` (None: the mount's service grant),
        ``state`` (``valid``, ``expiring``, ``expired``, ``expired, refreshable``,
        ``signed-out``, ``unreadable``) and ``expires`` (ISO 8601 or None); or None when
        the plugin does not sign in to ``mount``.

    Read by ``vmcp list``, ``vmcp info`` and ``vmcp status``; never carries a secret.
    """
