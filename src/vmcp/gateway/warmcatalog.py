"""A warm catalog: every mount's last good lists on disk, served while its backend starts.

Each time the namespace is rebuilt, the lists of every mount that is up are kept in
``$VMCP_HOME/catalog/<mount>.json`` with its backend's capabilities, under a fingerprint of
the settings that decide which backend the mount reaches (a mount pointed elsewhere starts
cold). Lists the cache rules never let be cached for that mount (a time to live of 0) are
not kept.

At start-up a mount with a kept catalog is *warm*: its remembered lists are in the
namespace at once, through the same overrides, pins and persona filters as live ones. When
every mount is warm, the fronts open before any backend is up (:attr:`WarmCatalog.on_ready`);
once they are all up, the live lists replace the remembered ones and clients hear
``list_changed`` for what differs. A call for a warm mount waits until it is up, at most its
start-up timeout, then fails with a "still starting" error, never "unknown tool".

A mount that loses its last backend keeps its lists for ``[gateway] flap_grace`` seconds
while it is restarted, instead of its tools vanishing and coming back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from vmcp.cache.keys import fingerprint
from vmcp.cache.rules import MountRules
from vmcp.config import vmcp_home
from vmcp.fileutil import atomic_write_text
from vmcp.protocol.errors import BACKEND_UNAVAILABLE, RETRY_AFTER, RpcError
from vmcp.registry.catalog import LIST_KINDS
from vmcp.registry.mount import Mount

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway
    from vmcp.gateway.namespace import Namespace
    from vmcp.routing.request import Request

log = logging.getLogger("vmcp.gateway")

#: list kind -> the namespace list that shows it
_SHOWN = {"tools": "tool_list", "prompts": "prompt_list", "resources": "resource_list",
          "resource_templates": "template_list"}


class WarmCatalog:
    """The warm catalog of one gateway: kept lists, waiting calls, and flapping mounts."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.folder = vmcp_home() / "catalog"
        #: awaited once every configured mount is warm, before any backend is spawned: the
        #: fronts may open now (``vmcp start`` opens them here)
        self.on_ready: Callable[[], Awaitable[None]] | None = None
        self._opened = False
        #: mount id -> the text last written for it
        self._saved: dict[str, str] = {}
        #: mount id -> set when that mount comes up or fails
        self._settled: dict[str, asyncio.Event] = {}
        self._grace: dict[str, asyncio.Task[None]] = {}
        #: ids of the mounts whose kept catalog held their tools
        self._kept_tools: set[str] = set()

    @property
    def enabled(self) -> bool:
        """``[gateway] warm_catalog``."""
        return self.gateway.config.gateway.warm_catalog

    @property
    def opened(self) -> bool:
        """True once the fronts were let open on the kept lists (before the backends)."""
        return self._opened

    # -- start-up ---------------------------------------------------------------------------

    def warm_up(self, mounts: list[Mount]) -> bool:
        """Give each starting mount its kept lists; True when every one had some (the
        namespace may then be built, then :meth:`open` called)."""
        if not self.enabled or not mounts:
            return False
        warm = [self._load(mount) for mount in mounts]
        return all(warm)

    async def open(self) -> None:
        """The namespace holds every mount's kept lists: let the fronts open."""
        if self.on_ready is not None:
            self._opened = True
            await self.on_ready()

    async def bring_up(self, mounts: list[Mount],
                       start: Callable[[Mount], Awaitable[None]]) -> None:
        """``start`` every mount concurrently. After the fronts opened early, one mount per
        turn of the event loop: spawning a process blocks the loop, and ten spawns in one
        turn would keep the open fronts from answering until all are done."""
        if not self._opened:
            await asyncio.gather(*(start(mount) for mount in mounts))
            return
        started = []
        for mount in mounts:
            started.append(asyncio.ensure_future(start(mount)))
            await asyncio.sleep(0)  # one turn: the fronts' input is read before the next
        await asyncio.gather(*started)

    def _load(self, mount: Mount) -> bool:
        path = self.folder / f"{mount.mount_id}.json"
        try:
            text = path.read_text(encoding="utf-8")
            kept = json.loads(text)
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as exc:
            log.warning("mount %s: kept catalog unreadable, starting cold: %s",
                        mount.mount_id, exc)
            return False
        if not isinstance(kept, dict) or kept.get("fingerprint") != fingerprint(mount.config):
            return False
        lists = kept.get("lists")
        capabilities = kept.get("capabilities")
        if not isinstance(lists, dict) or not isinstance(capabilities, dict):
            return False
        for kind in LIST_KINDS:
            items = lists.get(kind)
            mount.catalog[kind] = [i for i in items if isinstance(i, dict)] \
                if isinstance(items, list) else []
        mount.warm_capabilities = capabilities
        mount.warm = True
        if isinstance(lists.get("tools"), list):
            self._kept_tools.add(mount.mount_id)
        # Unchanged live lists are then not written again (the front snapshot's key
        # covers these files: rewriting the same lists would make it miss).
        self._saved[mount.mount_id] = text
        return True

    def shows_tools(self, mount: Mount) -> bool:
        """True when ``mount``'s tools are in the namespace: it is up, or warm on a kept
        catalog that held them."""
        return mount.state == "up" or (mount.warm and mount.mount_id in self._kept_tools)

    def came_up(self, mount: Mount) -> None:
        """``mount`` is up: its lists are live now, and calls waiting for it go on."""
        mount.warm = False
        self._settle(mount)

    def failed(self, mount: Mount) -> None:
        """``mount`` failed to start: calls waiting for it fail."""
        mount.warm = False
        self._settle(mount)

    def _settle(self, mount: Mount) -> None:
        event = self._settled.pop(mount.mount_id, None)
        if event is not None:
            event.set()

    def announce(self, before: Namespace, after: Namespace) -> None:
        """Tell the clients already connected which lists differ from the remembered ones."""
        changed = [kind for kind, attribute in _SHOWN.items()
                   if getattr(before, attribute) != getattr(after, attribute)]
        if changed:
            self.gateway.broadcast_list_changed(changed)

    # -- keeping ----------------------------------------------------------------------------

    def save(self, mounts: Iterable[Mount]) -> None:
        """Keep the live lists of every mount that is up (written only when they changed)."""
        if not self.enabled:
            return
        cache = self.gateway.config.cache
        for mount in mounts:
            if mount.state != "up" or mount.warm:
                continue
            capabilities = mount.capabilities
            mount.warm_capabilities = capabilities
            ttl = MountRules.build(mount.config, cache).ttl
            text = json.dumps({
                "fingerprint": fingerprint(mount.config),
                "capabilities": capabilities,
                "lists": {kind: items for kind, items in mount.catalog.items()
                          if LIST_KINDS[kind][0] in ttl},
            }, ensure_ascii=False, sort_keys=True)
            if self._saved.get(mount.mount_id) == text:
                continue
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                atomic_write_text(self.folder / f"{mount.mount_id}.json", text, 0o600)
            except OSError as exc:
                log.warning("mount %s: could not keep its catalog: %s", mount.mount_id, exc)
                continue
            self._saved[mount.mount_id] = text

    # -- calls while starting ---------------------------------------------------------------

    def waits_for(self, mount: Mount) -> bool:
        """True when a call for ``mount`` should wait for it (warm, not up yet)."""
        return mount.warm and mount.state != "up"

    def route_later(self, request: Request, mount: Mount, route: Callable[[], None]) -> None:
        """Run ``route()`` once ``mount`` is up; answer the request with an error if it does
        not come up within its start-up timeout."""
        sink, request_id = request.sink, request.id

        async def run() -> None:
            try:
                await self._until_up(mount)
                route()
            except RpcError as exc:
                sink.fail(request_id, exc)
            finally:
                if sink.tasks.get(request_id) is task:  # not the task route() started
                    del sink.tasks[request_id]

        task = sink.tasks[request_id] = asyncio.get_running_loop().create_task(run())

    async def _until_up(self, mount: Mount) -> None:
        mount_id = mount.mount_id
        timeout = self.gateway.startup_timeout(mount)
        event = self._settled.setdefault(mount_id, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            raise RpcError(BACKEND_UNAVAILABLE, f"Backend {mount_id!r} is still starting "
                           f"(waited {timeout:g}s); try again shortly",
                           {RETRY_AFTER: 1}) from None
        if self.gateway.mounts.get(mount_id) is not mount or mount.state != "up":
            raise RpcError(BACKEND_UNAVAILABLE, f"Backend {mount_id!r} failed to start" + (
                f": {mount.error}" if mount.error else ""))

    # -- flapping ---------------------------------------------------------------------------

    def keep(self, mount: Mount, withdraw: Callable[[Mount], None]) -> bool:
        """``mount`` lost its last backend: keep its lists for ``flap_grace`` seconds while
        it restarts, then ``withdraw(mount)`` unless it came back; False when not kept."""
        grace = self.gateway.config.gateway.flap_grace
        if not self.enabled or grace <= 0 or not mount.config.restart.enabled:
            return False
        mount.warm = True
        previous = self._grace.pop(mount.mount_id, None)
        if previous is not None:
            previous.cancel()

        async def expire() -> None:
            await asyncio.sleep(grace)
            self._grace.pop(mount.mount_id, None)
            if mount.warm and mount.state != "up" and self.gateway.mounts.get(
                    mount.mount_id) is mount:
                log.warning("mount %s: not back after %gs; its items leave the lists",
                            mount.mount_id, grace)
                self.failed(mount)
                withdraw(mount)

        self._grace[mount.mount_id] = asyncio.get_running_loop().create_task(expire())
        return True

    def close(self) -> None:
        """Stop the grace timers."""
        for task in self._grace.values():
            task.cancel()
        self._grace.clear()
