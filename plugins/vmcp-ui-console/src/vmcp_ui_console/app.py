"""The console's web application: the fronts' Host/Origin rules, sign-in with a token of an
admin persona (unless it is open on loopback), CSRF tokens on every form, and the pages.

Actions use the code the CLI uses: the running gateway's control operations (status,
mount, unmount, reload), the persona and token stores, the install manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web
from multidict import CIMultiDict

from vmcp.audit.trail import read_records
from vmcp.auth.base import AuthError, Principal
from vmcp.auth.tokens import TokenStore, TokenStoreError, parse_duration
from vmcp.config import default_config_path
from vmcp.control.ops import Operations, RuntimeState
from vmcp.control.protocol import ControlError
from vmcp.control.runtime import operations_of
from vmcp.fileutil import held_lock
from vmcp.persona import Persona, PersonaStore
from vmcp.persona.model import RuleKind
from vmcp.persona.store import PersonaError
from vmcp.repository import paths
from vmcp.repository.errors import InstallError
from vmcp.repository.manager import ServerManager
from vmcp.routing.middleware import Caller
from vmcp.transports.netsec import IDLE_CONNECTION_TIMEOUT, HostOriginPolicy, is_loopback
from vmcp_ui_console import pages
from vmcp_ui_console.settings import ConsoleSettings
from vmcp_ui_console.traffic import Traffic

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway

COOKIE = "vmcp_console"
#: how many of the latest audit records the audit page shows
AUDIT_ROWS = 100
#: how many of the log's last lines the log page shows
LOG_LINES = 200
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; "
                                "script-src 'self'; connect-src 'self'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    # not no-referrer: with it browsers send "Origin: null" on form posts, refused as foreign
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SCRIPT = resources.files("vmcp_ui_console").joinpath("static", "console.js").read_bytes()


class Console:
    """The console of one running gateway."""

    def __init__(self, gateway: Gateway, settings: ConsoleSettings) -> None:
        self.gateway = gateway
        self.settings = settings
        self.policy = HostOriginPolicy.from_settings(settings)
        #: sign-in is asked for when an auth driver checks callers, or off loopback
        self.needs_auth = gateway.auth_required or not is_loopback(settings.host)
        self._secret = secrets.token_bytes(32)
        # the operations of `vmcp start` (its configuration file, its metrics), else our own
        self.operations = operations_of(gateway) or Operations(
            RuntimeState(gateway, None, gateway.health.fronts, asyncio.Event()))
        self.traffic = Traffic(gateway, self._metrics(), settings.chart_interval,
                               settings.chart_points)
        self._sampler: asyncio.Task[None] | None = None

    def _metrics(self) -> Any:
        """The gateway's request counters; counting starts now when ``[monitoring]`` is off."""
        state = self.operations.state
        if self.gateway.metrics is None:
            from vmcp.monitoring.metrics import GatewayMetrics

            self.gateway.metrics = GatewayMetrics(self.gateway)
        if state.metrics is None:
            state.metrics = self.gateway.metrics
        return self.gateway.metrics

    def start(self) -> None:
        """Start sampling the traffic for the charts."""
        self._sampler = asyncio.get_running_loop().create_task(self.traffic.run())

    async def aclose(self) -> None:
        """Stop sampling."""
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        app.router.add_get("/", self.overview)
        app.router.add_post("/mounts/mount", self.mount)
        app.router.add_post("/mounts/unmount", self.unmount)
        app.router.add_get("/traffic", self.traffic_page)
        app.router.add_get("/traffic/charts", self.traffic_charts)
        app.router.add_get("/static/console.js", self.script)
        app.router.add_get("/installed", self.installed)
        app.router.add_post("/installed/update", self.update)
        app.router.add_post("/installed/rollback", self.rollback)
        app.router.add_get("/audit", self.audit)
        app.router.add_get("/tokens", self.tokens)
        app.router.add_post("/tokens/create", self.create_token)
        app.router.add_post("/tokens/revoke", self.revoke_token)
        app.router.add_get("/personas", self.personas)
        app.router.add_post("/personas/enable", self.enable_server)
        app.router.add_post("/personas/rule", self.change_rule)
        app.router.add_get("/logs", self.logs)
        app.router.add_get("/login", self.login_page)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        return app

    # -- checks ---------------------------------------------------------------------------

    def _csrf(self, credential: str | None) -> str:
        """The CSRF token of one signed-in credential (of everyone, when open)."""
        return hmac.new(self._secret, (credential or "").encode(), hashlib.sha256).hexdigest()

    async def _refusal(self, credential: str | None) -> tuple[int, str] | None:
        """Why ``credential`` may not use the console (401 or 403), or None."""
        if not credential:
            return 401, "Sign in with a token of an admin persona."
        try:
            principal = await self.gateway.authenticate(
                CIMultiDict({"Authorization": f"Bearer {credential}"}))
        except AuthError:
            return 401, "That token is not valid (unknown, revoked or expired)."
        if principal.persona not in self.settings.admins:
            return 403, f"Persona {principal.persona!r} may not use the console."
        return None

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = self.policy.refusal(request.headers.get("Host"), request.headers.get("Origin"))
        if refusal is not None:
            return web.Response(status=403, text=refusal, headers=SECURITY_HEADERS)
        credential = request.cookies.get(COOKIE) if self.needs_auth else None
        if self.needs_auth and request.path != "/login":
            problem = await self._refusal(credential)
            if problem is not None:
                status, message = problem
                return _page(pages.layout("Sign in", request.path, pages.login(message), None),
                             status)
        request["csrf"] = self._csrf(credential) if (
            credential or not self.needs_auth) else None
        if request.method == "POST" and request.path != "/login":
            form = await request.post()
            if not hmac.compare_digest(str(form.get("csrf", "")), request["csrf"] or "-"):
                return web.Response(status=403, text="Forbidden: missing or wrong CSRF token",
                                    headers=SECURITY_HEADERS)
            request["form"] = form
        return await handler(request)

    # -- pages ----------------------------------------------------------------------------

    async def overview(self, request: web.Request, message: str | None = None,
                       error: str | None = None, status: int = 200) -> web.Response:
        """Health, fronts, sessions, mounts with replicas and circuits; mount and unmount."""
        ops = self.operations
        state = await ops.status({})
        unmounted = [row["id"] for row in await ops.list_mounts({})
                     if row["state"] in ("unmounted", "disabled")]
        body = pages.overview(state, unmounted, request["csrf"], message, error)
        return _page(pages.layout("Overview", "/", body, request["csrf"]), status)

    async def mount(self, request: web.Request) -> web.Response:
        """Mount a configured server on the live gateway (as ``vmcp mount ID``)."""
        mount_id = str(request["form"].get("id", ""))
        try:
            await self.operations.mount({"id": mount_id})
        except ControlError as exc:
            return await self.overview(request, error=exc.message, status=400)
        return await self.overview(request, message=f"mounted {mount_id}")

    async def unmount(self, request: web.Request) -> web.Response:
        """Unmount a server from the live gateway (as ``vmcp unmount ID``)."""
        mount_id = str(request["form"].get("id", ""))
        try:
            await self.operations.unmount({"id": mount_id})
        except ControlError as exc:
            return await self.overview(request, error=exc.message, status=400)
        return await self.overview(request, message=f"unmounted {mount_id}")

    async def traffic_page(self, request: web.Request) -> web.Response:
        """Request rate and latency per mount, as live charts."""
        body = pages.traffic(self.traffic.mounts(), self.traffic.interval)
        return _page(pages.layout("Traffic", "/traffic", body, request["csrf"]))

    async def traffic_charts(self, request: web.Request) -> web.Response:
        """The charts alone, for the page's script to refresh them."""
        return _page(pages.charts(self.traffic.mounts(), self.traffic.interval))

    async def script(self, request: web.Request) -> web.Response:
        """The console's script (the only one: it refreshes the charts)."""
        return web.Response(body=SCRIPT, content_type="text/javascript",
                            headers=SECURITY_HEADERS)

    def _manager(self) -> ServerManager:
        config_file = self.operations.state.config_path or default_config_path()
        return ServerManager.beside(config_file)

    async def installed(self, request: web.Request, message: str | None = None,
                        error: str | None = None, status: int = 200) -> web.Response:
        """The installed servers (as ``vmcp installed``), with update and rollback."""
        rows = await asyncio.to_thread(lambda: self._manager().installed_rows())
        body = pages.installed(rows, request["csrf"], message, error)
        return _page(pages.layout("Installed servers", "/installed", body, request["csrf"]),
                     status)

    async def _changing(self, request: web.Request,
                        change: Callable[[ServerManager, str], Awaitable[str]]) -> web.Response:
        """Run one change of installed servers under the lock the CLI's changes hold, then
        reload the live gateway so that the mounts switched are restarted."""
        name = str(request["form"].get("name", ""))
        with contextlib.ExitStack() as lock:
            await asyncio.to_thread(lock.enter_context, held_lock(paths.changes_lock()))
            try:
                manager = self._manager()
                full, _ = manager.installed_name(name)
                said = await change(manager, full)
            except InstallError as exc:
                return await self.installed(request, error=str(exc), status=400)
        try:
            changes = await self.operations.reload({})
        except ControlError as exc:
            return await self.installed(request, error=f"{said}; reload failed: {exc.message}",
                                        status=400)
        restarted = ", ".join(changes.get("changed", []))
        return await self.installed(
            request, message=said + (f"; restarted {restarted}" if restarted else ""))

    async def update(self, request: web.Request) -> web.Response:
        """Install the newest version of a server and switch its mounts (as ``vmcp update``)."""

        async def change(manager: ServerManager, name: str) -> str:
            current, plan = manager.update_plan(name)
            if plan is None:
                return f"{name} {current.version} is the newest version"
            await manager.update(plan, {})
            return f"updated {name} {current.version} -> {plan.manifest.version}"

        return await self._changing(request, change)

    async def rollback(self, request: web.Request) -> web.Response:
        """Switch a server back to the version used before (as ``vmcp rollback``)."""

        async def change(manager: ServerManager, name: str) -> str:
            old, new = await asyncio.to_thread(manager.rollback, name)
            return f"rolled {name} back from {old} to {new}"

        return await self._changing(request, change)

    async def audit(self, request: web.Request) -> web.Response:
        """The latest audit records."""
        path = self.gateway.config.audit.file()
        records = await asyncio.to_thread(lambda: list(deque(read_records(path), AUDIT_ROWS)))
        return _page(pages.layout("Audit trail", "/audit", pages.audit(records),
                                  request["csrf"]))

    async def tokens(self, request: web.Request, created: str | None = None,
                     error: str | None = None, status: int = 200) -> web.Response:
        """The tokens, with the create and revoke forms."""
        try:
            records = [r.to_json() for r in await asyncio.to_thread(TokenStore.default().load)]
        except TokenStoreError as exc:
            records, error = [], str(exc)
        body = pages.tokens(records, request["csrf"], created, error)
        return _page(pages.layout("Tokens", "/tokens", body, request["csrf"]), status)

    async def create_token(self, request: web.Request) -> web.Response:
        """Create a token (as ``vmcp token create``) and show it this once."""
        form = request["form"]
        persona, label = str(form.get("persona", "")), str(form.get("name", ""))
        try:
            lifetime = parse_duration(str(form.get("expires", "90d")))
            await asyncio.to_thread(PersonaStore.default().load, persona)
            _, token = await asyncio.to_thread(TokenStore.default().create, persona, lifetime,
                                               label)
        except (ValueError, PersonaError, TokenStoreError) as exc:
            return await self.tokens(request, error=str(exc), status=400)
        return await self.tokens(request, created=token)

    async def revoke_token(self, request: web.Request) -> web.Response:
        """Revoke a token (as ``vmcp token revoke``)."""
        try:
            await asyncio.to_thread(TokenStore.default().revoke, str(request["form"].get("id")))
        except TokenStoreError as exc:
            return await self.tokens(request, error=str(exc), status=400)
        raise web.HTTPSeeOther("/tokens")

    def _sees(self, persona: str) -> dict[str, dict[str, list[str]]]:
        """What ``persona`` sees of each mount, by list (the gateway's own filters)."""
        visible = self.gateway.visible
        caller = Caller("console", Principal("console", persona))
        seen: dict[str, dict[str, list[str]]] = {}
        for mount_id, mount in self.gateway.mounts.items():
            lists: dict[str, list[str]] = {"tools": [], "prompts": [], "resources": []}
            for kind, label, key in pages.SEEN_KINDS:
                shown = lists["resources" if kind == "resource_templates" else kind]
                for item in mount.catalog.get(kind, []):
                    name = item.get(key)
                    if isinstance(name, str) and (
                            visible is None or visible(caller, mount_id, label, name)):
                        shown.append(name)
            seen[mount_id] = lists
        return seen

    async def personas(self, request: web.Request, error: str | None = None,
                       status: int = 200) -> web.Response:
        """The personas, their servers and rules, and what each one sees."""
        found, corrupt = await asyncio.to_thread(PersonaStore.default().load_all)
        entries = [{"name": name, "servers": {s: r.model_dump() for s, r in p.servers.items()},
                    "sees": self._sees(name)} for name, p in sorted(found.items())]
        if corrupt and error is None:
            error = "; ".join(str(c) for c in corrupt)
        body = pages.personas(entries, sorted(self.gateway.config.servers), request["csrf"],
                              error)
        return _page(pages.layout("Personas", "/personas", body, request["csrf"]), status)

    async def _change_persona(self, request: web.Request,
                              change: Callable[[Persona], object]) -> web.Response:
        try:
            await asyncio.to_thread(PersonaStore.default().update,
                                    str(request["form"].get("persona", "")), change)
        except (PersonaError, ValueError) as exc:
            return await self.personas(request, error=str(exc), status=400)
        raise web.HTTPSeeOther("/personas")

    async def enable_server(self, request: web.Request) -> web.Response:
        """Enable or disable a server for a persona (as ``vmcp persona P enable|disable``)."""
        form = request["form"]
        server = str(form.get("server", ""))
        if server not in self.gateway.config.servers:
            return await self.personas(request, error=f"no server {server!r}", status=400)
        enable = form.get("action") == "enable"
        return await self._change_persona(
            request, lambda p: p.enable(server) if enable else p.disable(server))

    async def change_rule(self, request: web.Request) -> web.Response:
        """Add or remove an allow/deny pattern (as ``vmcp persona P allow-tool ...``)."""
        form = request["form"]
        server, kind = str(form.get("server", "")), str(form.get("kind", ""))
        pattern, add = str(form.get("pattern", "")), form.get("action") == "add"
        if kind not in pages.RULE_KINDS or not pattern:
            return await self.personas(request, error="a rule needs a kind and a pattern",
                                       status=400)

        def apply(persona: Persona) -> object:
            if server not in persona.servers:
                raise PersonaError(f"server {server!r} is not enabled for {persona.name!r}")
            rule_kind = cast(RuleKind, kind)
            return (persona.add_rule(server, rule_kind, pattern) if add
                    else persona.remove_rule(server, rule_kind, pattern))

        return await self._change_persona(request, apply)

    async def logs(self, request: web.Request) -> web.Response:
        """The last lines of the gateway's log file."""
        source = self.gateway.config.logging.file
        lines = await asyncio.to_thread(_tail, source, LOG_LINES) if source else []
        return _page(pages.layout("Log", "/logs", pages.log_tail(lines, source),
                                  request["csrf"]))

    async def login_page(self, request: web.Request) -> web.Response:
        """The sign-in form (the overview when no sign-in is needed)."""
        if not self.needs_auth:
            raise web.HTTPSeeOther("/")
        return _page(pages.layout("Sign in", "/login", pages.login(), None))

    async def login(self, request: web.Request) -> web.StreamResponse:
        """Check the token; keep it in an HttpOnly, same-site cookie."""
        token = str((await request.post()).get("token", ""))
        problem = await self._refusal(token) if self.needs_auth else None
        if problem is not None:
            status, message = problem
            return _page(pages.layout("Sign in", "/login", pages.login(message), None), status)
        response = web.HTTPSeeOther("/")
        if self.needs_auth:
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        """Forget the cookie."""
        response = web.HTTPSeeOther("/login")
        response.del_cookie(COOKIE, path="/")
        return response


def _tail(path: str, count: int) -> list[str]:
    try:
        with Path(path).open(encoding="utf-8", errors="replace") as lines:
            return list(deque(lines, count))
    except OSError as exc:
        return [f"cannot read the log: {exc}\n"]


def _page(html: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=html, content_type="text/html",
                        headers=SECURITY_HEADERS)


async def serve(console: Console) -> tuple[web.AppRunner, str]:
    """Listen; return the runner (to clean up) and the console's URL."""
    settings = console.settings
    runner = web.AppRunner(console.app(), access_log=None, handle_signals=False,
                           keepalive_timeout=IDLE_CONNECTION_TIMEOUT)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    console.start()
    port = runner.addresses[0][1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return runner, f"http://{host}:{port}/"


