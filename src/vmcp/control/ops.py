"""The operations the control endpoint offers, run against the live gateway."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmcp import __version__
from vmcp.config import ConfigError, MountConfig, VmcpConfig, load_config
from vmcp.control.local import LocalSession
from vmcp.control.mcpsocket import serve_mcp
from vmcp.control.protocol import ControlError
from vmcp.plugins import get_plugin_manager
from vmcp.protocol.errors import RpcError

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway
    from vmcp.monitoring.metrics import GatewayMetrics
    from vmcp.registry.mount import Mount

Operation = Callable[[dict[str, Any]], Awaitable[Any]]
#: seconds ``status`` waits for the shared store's list of instances
CLUSTER_TIMEOUT = 2.0


@dataclass
class RuntimeState:
    """What the control operations know about the running gateway besides the gateway."""

    gateway: Gateway
    #: the configuration file reloads read (None: the default path of ``$VMCP_HOME``)
    config_path: Path | None
    #: front name -> where it listens (None until it is ready)
    fronts: dict[str, str | None]
    stop: asyncio.Event
    started: float = field(default_factory=time.time)
    metrics: GatewayMetrics | None = None
    metrics_url: str | None = None
    log_file: str | None = None
    #: called with the new configuration after a successful reload
    on_reload: Callable[[VmcpConfig], None] | None = None


def describe_target(mount: MountConfig) -> str:
    """The command line or URL of a mount, as lists show it."""
    if mount.transport == "stdio":
        return " ".join([mount.command or "", *mount.args])
    return mount.url or ", ".join(mount.urls)


def sign_ins(config: MountConfig) -> list[dict[str, Any]] | None:
    """Who is signed in to a mount a plugin signs in to (OAuth), per persona; else None."""
    for rows in get_plugin_manager().hook.vmcp_sign_ins(mount=config):
        if rows is not None:
            return rows
    return None


def mount_row(config: MountConfig, mount: Mount | None) -> dict[str, Any]:
    """One row of ``vmcp list``: the configured mount and, when mounted, its state."""
    return {
        "id": config.id,
        "transport": config.transport,
        "target": describe_target(config),
        "prefix": config.exposed_prefix,
        "enabled": config.enabled,
        "replicas": config.replica_count,
        "state": mount.state if mount is not None else ("unmounted" if config.enabled
                                                       else "disabled"),
        "tools": len(mount.catalog["tools"]) if mount is not None else None,
        "error": mount.error if mount is not None and mount.state != "up" else None,
        "sign_ins": sign_ins(config),
    }


def mount_info(gateway: Gateway, mount: Mount) -> dict[str, Any]:
    """What ``vmcp info`` shows of a mount: its server, health, lists and changed tools."""
    upstream = mount.primary
    return {
        "id": mount.mount_id,
        "state": mount.state,
        "error": mount.error if mount.state != "up" else None,
        "server": upstream.server_info if upstream is not None else {},
        "protocolVersion": upstream.protocol_version if upstream is not None else None,
        "era": mount.era,
        "capabilities": upstream.capabilities if upstream is not None else {},
        "instructions": upstream.instructions if upstream is not None else None,
        "health": mount.describe(),
        **mount.catalog,
        "pinning": gateway.pinning.report(mount),
        "sign_ins": sign_ins(mount.config),
    }


def _replica_pid(mount: Mount, replica_id: str) -> int | None:
    for replica in mount.replicas:
        if replica.replica_id == replica_id and replica.upstream is not None:
            # Process-backed connections (stdio) know their pid; remote ones have none.
            return getattr(replica.upstream.connection, "pid", None)
    return None


def _cache_snapshot(gateway: Gateway) -> dict[str, int] | None:
    """The cache layer's counters (hits, misses ...), or None without a cache."""
    snapshot = getattr(getattr(gateway, "cache", None), "snapshot", None)
    return snapshot() if snapshot is not None else None


class Operations:
    """Runs control requests; each operation takes the request's ``args``."""

    def __init__(self, state: RuntimeState) -> None:
        self.state = state
        self._reload_lock = asyncio.Lock()
        self.table: dict[str, Operation] = {
            "status": self.status,
            "list": self.list_mounts,
            "info": self.info,
            "mount": self.mount,
            "unmount": self.unmount,
            "reload": self.reload,
            "tools": self.tools,
            "lint": self.lint,
            "approve": self.approve,
            "call": self.call,
            "stop": self.stop,
        }

    async def run(self, op: Any, args: Any) -> Any:
        """Run one operation.

        :raises ControlError: unknown operation, bad arguments, or the operation failed.
        """
        operation = self.table.get(op) if isinstance(op, str) else None
        if operation is None:
            raise ControlError(f"unknown operation {op!r} (known: {', '.join(self.table)})")
        if not isinstance(args, dict):
            raise ControlError("args must be an object")
        return await operation(args)

    async def serve_mcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        persona: str | None) -> None:
        """Serve an MCP session of the live gateway on the control connection."""
        await serve_mcp(self.state.gateway, reader, writer, persona)

    @property
    def gateway(self) -> Gateway:
        """The live gateway."""
        return self.state.gateway

    def _mount_status(self, mount: Mount) -> dict[str, Any]:
        entry = mount.describe()
        for replica in entry["replicas"]:
            replica["pid"] = _replica_pid(mount, replica["id"])
        entry["tools"] = len(mount.catalog["tools"])
        entry["sign_ins"] = sign_ins(mount.config)
        metrics = self.state.metrics
        if metrics is not None:
            entry["requests"], entry["errors"] = metrics.totals(mount.mount_id)
        return entry

    async def status(self, args: dict[str, Any]) -> dict[str, Any]:
        """Running, since when, serving what, and how each mount is doing."""
        gateway, state = self.gateway, self.state
        metrics = state.metrics
        return {
            "running": True,
            "pid": os.getpid(),
            "version": __version__,
            "started": state.started,
            "uptime": round(time.time() - state.started, 3),
            "config": str(state.config_path) if state.config_path else None,
            "fronts": [{"name": name, "where": where} for name, where in state.fronts.items()],
            "sessions": len(gateway.sessions),
            "mounts": [self._mount_status(m) for m in gateway.mounts.values()],
            "requests": dict(zip(("total", "errors"), metrics.totals(), strict=True))
            if metrics is not None else None,
            "cache": _cache_snapshot(gateway),
            "metrics": state.metrics_url,
            "log": state.log_file,
            "shutdown_grace": gateway.config.gateway.shutdown_grace,
            "health": gateway.health.verdict(),
            "cluster": await _cluster_snapshot(gateway),
        }

    async def list_mounts(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """The configured mounts with their live state, then live mounts not configured."""
        gateway = self.gateway
        rows = [mount_row(c, gateway.mounts.get(c.id)) for c in gateway.config.servers.values()]
        rows += [mount_row(m.config, m) for m in gateway.mounts.values()
                 if m.mount_id not in gateway.config.servers]
        return rows

    def _mounted(self, args: dict[str, Any]) -> Mount:
        mount_id = args.get("id")
        mount = self.gateway.mounts.get(mount_id) if isinstance(mount_id, str) else None
        if mount is None:
            mounted = ", ".join(self.gateway.mounts) or "none"
            raise ControlError(f"{mount_id!r} is not mounted (mounted: {mounted})")
        return mount

    async def info(self, args: dict[str, Any]) -> dict[str, Any]:
        """One mount's server, health and lists."""
        return mount_info(self.gateway, self._mounted(args))

    def _read_config(self) -> VmcpConfig:
        try:
            config, _ = load_config(self.state.config_path)
        except ConfigError as exc:
            raise ControlError(f"the configuration is invalid ({exc.source})",
                               [f"{exc.source}: {p}" for p in exc.problems]) from exc
        return config

    async def mount(self, args: dict[str, Any]) -> dict[str, Any]:
        """Mount a server the configuration defines (even a disabled one) on the live gateway."""
        mount_id = args.get("id")
        servers = self._read_config().servers
        if not isinstance(mount_id, str) or mount_id not in servers:
            raise ControlError(f"no server {mount_id!r} in the configuration "
                               f"(defined: {', '.join(servers) or 'none'})")
        if mount_id in self.gateway.mounts:
            raise ControlError(f"{mount_id!r} is already mounted")
        config = servers[mount_id]
        if not config.enabled:
            config = config.model_copy(update={"enabled": True})
        try:
            mount = await self.gateway.add_mount(config)
        except Exception as exc:
            raise ControlError(f"cannot mount {mount_id!r}: {exc}") from exc
        if mount.state != "up":
            reason = mount.error or mount.state
            await self.gateway.remove_mount(mount_id)
            raise ControlError(f"{mount_id!r} failed to start: {reason}")
        # What runs is now part of the running configuration: a reload that finds the same
        # definition in the file leaves it alone.
        gateway = self.gateway
        gateway.config = gateway.config.model_copy(
            update={"servers": {**gateway.config.servers, mount_id: config}})
        return self._mount_status(mount)

    async def unmount(self, args: dict[str, Any]) -> dict[str, Any]:
        """Unmount a server from the live gateway; sessions stay connected."""
        mount = self._mounted(args)
        await self.gateway.remove_mount(mount.mount_id)
        return {"id": mount.mount_id, "state": "unmounted"}

    async def reload(self, args: dict[str, Any]) -> dict[str, list[str]]:
        """Re-read the configuration and apply it; an invalid one changes nothing.

        Mounts are changed live; settings only read at start-up (fronts, transports,
        monitoring) are named in ``restart_needed``.
        """
        async with self._reload_lock:
            config = self._read_config()
            old = self.gateway.config
            changes = await self.gateway.apply_config(config)
            if self.state.on_reload is not None:
                self.state.on_reload(config)
            pending = [name for name, before, after in (
                ("gateway.fronts", old.gateway.fronts, config.gateway.fronts),
                ("transports", old.transports, config.transports),
                ("monitoring", old.monitoring, config.monitoring),
                ("audit", old.audit, config.audit)) if before != after]
            return {**changes, "failed": self._failed(changes["changed"] + changes["added"]),
                    "restart_needed": pending}

    def _failed(self, applied: list[str]) -> dict[str, str]:
        """Every mount that is failed after a reload (those just ``applied`` that could not
        even be created included), with the cause."""
        failed = {mount_id: "could not be created (see the gateway's log)"
                  for mount_id in applied if mount_id not in self.gateway.mounts}
        for mount_id, mount in self.gateway.mounts.items():
            if mount.state == "failed":
                failed[mount_id] = mount.error or "failed"
        return failed

    async def _local(self) -> LocalSession:
        session = LocalSession(self.gateway, self.gateway.config.gateway.request_timeout)
        await session.open()
        return session

    async def tools(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Every tool the gateway exposes, as a client sees them."""
        session = await self._local()
        try:
            return await session.list_tools()
        finally:
            await session.aclose()

    async def lint(self, args: dict[str, Any]) -> dict[str, Any]:
        """The exposed tool and prompt names checked against the name rules."""
        from vmcp.gateway.lint import lint_report

        return lint_report(self.gateway)

    async def approve(self, args: dict[str, Any]) -> list[str]:
        """Pin the changed tool definitions of one mount (``id``), or of one ``tool``."""
        tool = args.get("tool")
        if tool is not None and not isinstance(tool, str):
            raise ControlError("tool must be a name")
        return self.gateway.approve_tools(self._mounted(args).mount_id, tool)

    async def call(self, args: dict[str, Any]) -> dict[str, Any]:
        """Call one tool as a client would; the result as the gateway sent it."""
        name, arguments = args.get("name"), args.get("arguments") or {}
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise ControlError("call needs a tool name and an arguments object")
        session = await self._local()
        try:
            return await session.call_tool(name, arguments)
        except RpcError as exc:
            raise ControlError(f"error {exc.code}: {exc.message}") from exc
        except TimeoutError as exc:
            raise ControlError(f"{name} did not answer in time") from exc
        finally:
            await session.aclose()

    async def stop(self, args: dict[str, Any]) -> dict[str, Any]:
        """Stop gracefully: in-flight calls get the shutdown grace period to finish."""
        self.state.stop.set()
        return {"stopping": True, "pid": os.getpid()}


async def _cluster_snapshot(gateway: Gateway) -> dict[str, Any] | None:
    """This instance, the shared store's health and the live instances (their heartbeats),
    or None without ``[cluster]``."""
    shared = gateway.cluster
    if shared is None:
        return None
    snapshot: dict[str, Any] = {"instance": shared.instance, "problem": shared.problem(),
                                "instances": None}
    if snapshot["problem"] is None:
        try:
            instances = await asyncio.wait_for(shared.instances(), CLUSTER_TIMEOUT)
        except Exception as exc:  # the store's own error, whatever its driver raises
            snapshot["problem"] = f"cannot list the instances: {exc}"
        else:
            snapshot["instances"] = [dataclasses.asdict(info) for info in instances]
    return snapshot
