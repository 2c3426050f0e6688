"""Configuration: pydantic models for the whole gateway, and where they are read from.

The effective configuration is the defaults shipped in ``vmcp/defaults/`` overlaid with
``$VMCP_HOME/config/vmcp.toml`` (or ``--config PATH``). Mounts come from the ``[servers]``
table of that file, and from ``servers.toml`` beside it; when neither defines any server
the shipped demo mount table is used, so a fresh install does something real.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vmcp.configlocate import did_you_mean, fields_at, line_of
from vmcp.fileutil import atomic_write_text
from vmcp.routing.circuit import CircuitSettings
from vmcp.routing.retry import RetrySettings

MOUNT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FIELD_MSG_RE = re.compile(r"^[a-z_]+: ")


class ConfigError(Exception):
    """A configuration file is invalid; ``problems`` holds one located message each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


#: the methods whose results the cache layer may keep (keys of the ``method_ttl`` tables)
CACHEABLE_METHODS = (
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "completion/complete",
    "tools/call",
)


def check_method_ttl(value: dict[str, float]) -> dict[str, float]:
    """Validate a ``method_ttl`` table: cacheable methods only, times to live of 0 or more."""
    unknown = sorted(set(value) - set(CACHEABLE_METHODS))
    if unknown:
        raise ValueError(
            f"not cacheable: {', '.join(unknown)} (one of {', '.join(CACHEABLE_METHODS)})")
    negative = sorted(method for method, ttl in value.items() if ttl < 0)
    if negative:
        raise ValueError(f"time to live must be 0 or more: {', '.join(negative)}")
    return value


class _Model(BaseModel):
    # Built on first use, not at import: validating a VmcpConfig builds the schema of every
    # table in it at once, and the models used on their own are built when they first are.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)


class GatewaySettings(_Model):
    """How the gateway presents itself and aggregates."""

    #: the server name clients are shown in the handshake
    name: str = "vmcp"
    #: put between a mount's prefix and a tool or prompt name (``files__read``)
    separator: str = "__"
    #: items per page of the lists the gateway sends
    page_size: int = Field(100, ge=1, le=10_000)
    #: seconds a routed call may take (a mount's ``timeout`` overrides it)
    request_timeout: float = Field(60.0, gt=0)
    #: seconds a backend may take to start and answer the handshake
    startup_timeout: float = Field(20.0, gt=0)
    #: seconds calls in flight get to finish when the gateway stops
    shutdown_grace: float = Field(5.0, ge=0)
    #: seconds a stopping gateway keeps its network fronts listening (answering new requests
    #: 503 with ``Retry-After``) even when nothing is in flight, so that a load balancer's
    #: health check (``/readyz`` says "draining") takes it out of rotation before it closes;
    #: at most ``shutdown_grace``. 0: close as soon as the calls in flight are done
    drain_linger: float = Field(0.0, ge=0)
    #: gateway processes ``vmcp start`` runs on this machine, sharing the network fronts'
    #: ports (1: one process, no supervisor); ``--workers`` overrides it
    workers: int = Field(1, ge=1, le=64)
    #: largest JSON-RPC message accepted from a client or backend
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    #: how long lists of backends that never announce changes are trusted before re-reading
    list_ttl: float = Field(10.0, ge=0)
    #: which front transports `vmcp start` serves when --transport is not given
    fronts: list[str] = Field(default_factory=lambda: ["stdio"])
    #: the instructions clients are given in the handshake (unset: none)
    instructions: str | None = None
    #: the persona of a connection that brings none (unset: full access)
    default_persona: str | None = None
    #: longest exposed tool or prompt name; longer ones get a short alias (see gateway.aliases)
    max_tool_name: int = Field(64, ge=24, le=128)
    #: what tools/list shows: every tool, search meta-tools, or those above search_threshold
    tool_exposure: Literal["all", "search", "auto"] = "all"
    #: with tool_exposure = "auto", more visible tools than this switch a caller to search
    search_threshold: int = Field(40, ge=0)
    #: how vmcp talks to a mount that sets no ``era``: probe ``server/discover`` and fall
    #: back to ``initialize`` (``auto``), the handshake era only, or the 2026-07-28 era only
    backend_era: Literal["auto", "legacy", "modern"] = "auto"
    #: seconds a backend's call waits for a 2026-07-28 client to bring the input it was
    #: asked for (``input_required``); unset: ``request_timeout``
    input_timeout: float | None = Field(None, gt=0)
    #: the key that seals 2026-07-28 ``requestState`` (any string; instances that share it
    #: verify each other's states). Unset: ``VMCP_STATE_KEY``, else a key per process.
    state_key: str | None = Field(default_factory=lambda: os.environ.get("VMCP_STATE_KEY"),
                                  repr=False)
    #: with tool_exposure = "auto", a visible tool list estimated at more tokens than this
    #: (a token per four characters of its JSON) switches a caller to search too
    search_token_threshold: int = Field(10_000, ge=0)
    #: when a caller is shown the search meta-tools, up to this many tools it described
    #: (the latest) join its tools/list, announced with list_changed; 0: none
    promote_tools: int = Field(0, ge=0, le=1000)
    #: keep every mount's last good lists on disk and serve them while its backend starts
    warm_catalog: bool = True
    #: seconds a mount that lost its backend keeps its lists while it is restarted
    flap_grace: float = Field(30.0, ge=0)
    #: give memory back once a load of sessions is gone: when the gateway's sessions fall to
    #: a quarter of a peak of 100 or more, a full garbage collection and (on glibc)
    #: ``malloc_trim`` run a second after the last one left, at most every 30 s (a pause of
    #: some milliseconds; see ``vmcp.memrelease``)
    release_memory: bool = True

    @field_validator("separator")
    @classmethod
    def _separator_is_name_safe(cls, value: str) -> str:
        if not value or not re.fullmatch(r"[A-Za-z0-9_.-]{1,8}", value):
            raise ValueError("must be 1-8 characters from A-Z a-z 0-9 _ . -")
        return value


class LoggingSettings(_Model):
    """Where the gateway's log goes and how much of it."""

    #: the least severe level written
    level: Literal["debug", "info", "warning", "error"] = "info"
    #: log to this file (default: stderr; ``vmcp start -d``: ``logs/vmcp.log``)
    file: str | None = None
    #: one JSON object per line instead of text
    json_lines: bool = False
    #: rotate the log file when it reaches this many bytes (0: never)
    max_bytes: int = Field(10 * 1024 * 1024, ge=0)
    #: rotated files kept beside it (``vmcp.log.1`` ... ``vmcp.log.N``)
    backup_count: int = Field(5, ge=0)


class CacheSettings(_Model):
    """Which cache driver to use, and its settings."""

    model_config = ConfigDict(extra="allow")

    #: the cache driver: ``memory`` built in, ``disk`` and ``redis`` from plugins
    backend: str = "memory"
    #: false: nothing is cached
    enabled: bool = True
    #: seconds a cached entry lives unless a method or mount says otherwise
    ttl: float = Field(300.0, ge=0)
    #: per-method time to live, e.g. {"tools/list" = 3600}; 0 = that method is never cached
    method_ttl: dict[str, float] = Field(default_factory=dict)
    #: seconds one cache operation may take before the call goes on without the cache
    timeout: float = Field(1.0, gt=0)
    #: after the cache backend failed, seconds served without it before it is tried again
    retry_interval: float = Field(5.0, ge=0)

    @field_validator("method_ttl")
    @classmethod
    def _method_ttl_shape(cls, value: dict[str, float]) -> dict[str, float]:
        return check_method_ttl(value)


class MonitoringSettings(_Model):
    """Metrics exposition."""

    #: serve Prometheus metrics at ``/metrics`` on this port (0: a free one)
    metrics_port: int | None = Field(None, ge=0, le=65535)
    #: the address metrics are served on (non-loopback only with an auth driver)
    metrics_host: str = "127.0.0.1"


class AuditSettings(_Model):
    """The audit trail: one JSON line per routed call (``[audit]``)."""

    #: write one JSON line per routed call
    enabled: bool = False
    #: the trail's file (default ``$VMCP_HOME/logs/audit.jsonl``)
    path: str | None = None
    #: rotate the file when it reaches this many bytes (0: never)
    max_bytes: int = Field(10 * 1024 * 1024, ge=0)
    #: rotated files kept beside it (``audit.jsonl.1`` ... ``audit.jsonl.N``)
    backup_count: int = Field(5, ge=0)

    def file(self) -> Path:
        """Where the trail is written and read."""
        return Path(expand_vars(self.path)) if self.path else vmcp_home() / "logs" / "audit.jsonl"


class AuthSettings(_Model):
    """Which auth driver front connections use, and its settings."""

    model_config = ConfigDict(extra="allow")

    #: how network front connections authenticate: ``none``, ``token``, ``jwt``
    driver: str = "none"
    #: this gateway's canonical URL (the audience tokens must name; in the RFC 9728 metadata)
    resource: str | None = None
    #: OAuth authorization servers that issue tokens for this gateway (RFC 9728 metadata)
    authorization_servers: list[str] = Field(default_factory=list)


class RepositoryConfig(_Model):
    """One source of server manifests."""

    model_config = ConfigDict(extra="allow")

    #: where the manifests are (registry URL, git URL, package index)
    url: str
    #: the repository driver: ``git``, ``http`` or ``pypi``
    type: str


class HealthSettings(_Model):
    """Periodic ``ping`` of every replica (``[servers.<id>.health]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: seconds between pings; 0 turns health checks off
    interval: float = Field(30.0, ge=0)
    #: seconds a ping may take
    timeout: float = Field(5.0, gt=0)
    #: consecutive failed pings before a replica is marked unhealthy
    unhealthy_after: int = Field(2, ge=1)


class RestartSettings(_Model):
    """Restarting backends that exit (``[servers.<id>.restart]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: restart a backend that exits
    enabled: bool = True
    #: seconds before the first restart; doubled each time
    initial_backoff: float = Field(0.5, ge=0)
    #: longest wait between restarts
    max_backoff: float = Field(30.0, ge=0)
    #: more restarts than this within ``window_seconds`` is a crash loop: the replica fails
    max_restarts: int = Field(5, ge=0)
    #: the window ``max_restarts`` is counted in
    window_seconds: float = Field(60.0, gt=0)


class PoolSettings(_Model):
    """The connections of an isolated mount (``[servers.<id>.pool]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: isolated connections (processes, for stdio) open at once; past it, the longest idle
    #: one is closed, and a call is refused when every one is busy
    max_connections: int = Field(32, ge=1, le=4096)
    #: seconds an isolated connection may sit unused before it is closed
    idle_timeout: float = Field(300.0, gt=0)


class LimitSettings(_Model):
    """Resource limits for spawned backends (``[servers.<id>.limits]``); unset = inherited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: CPU time a spawned backend may use (RLIMIT_CPU)
    cpu_seconds: int | None = Field(None, ge=1)
    #: memory a spawned backend may map, in MiB (RLIMIT_AS)
    address_space_mb: int | None = Field(None, ge=16)
    #: files a spawned backend may have open (RLIMIT_NOFILE)
    open_files: int | None = Field(None, ge=16)


_EXPOSED_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")


class PromptOverride(_Model):
    """How one of a mount's prompts is shown (``[servers.<id>.prompts.<name>]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the name shown instead of the backend's (still under the mount's prefix)
    name: str | None = None
    #: replaces the backend's description
    description: str | None = None
    #: appended to the (backend's or replaced) description, on a new line
    extend_description: str | None = None
    #: never shown, and unknown to every caller
    hidden: bool = False

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str | None) -> str | None:
        if value is not None and not _EXPOSED_NAME_RE.fullmatch(value):
            raise ValueError("name must be 1-128 characters from A-Z a-z 0-9 _ . -")
        return value


class ToolOverride(PromptOverride):
    """How one of a mount's tools is shown (``[servers.<id>.tools.<name>]``)."""

    #: annotations laid over the backend's (``readOnlyHint`` ...); trusted mounts only
    annotations: dict[str, Any] = Field(default_factory=dict)


class OAuthSettings(_Model):
    """``[servers.X.oauth]``: vmcp signs in to a protected HTTP or WebSocket backend with
    OAuth 2.1 (a WebSocket backend's bearer goes on the upgrade request).

    Everything else (the authorization server, its endpoints, the scopes) is discovered from
    the backend's 401 challenge and metadata. The client identity is, in this order: the
    configured ``client_id``, a client ID metadata document at ``client_metadata_url``, or
    dynamic client registration.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``authorization_code``: a person signs in (``vmcp auth login``);
    #: ``client_credentials``: a machine grant the gateway obtains itself;
    #: ``token_exchange``: each caller's own bearer token (the JWT the front verified) is
    #: exchanged at the authorization server for a backend token (RFC 8693; needs a
    #: ``client_id`` and ``isolation = "session"``; the mount's lists use a client
    #: credentials grant of the same client)
    grant: Literal["authorization_code", "client_credentials", "token_exchange"] = (
        "authorization_code")
    #: whose grant a call uses: each persona its own (needs ``isolation = "persona"``), or
    #: one service grant for every caller (``token_exchange`` ignores it: each caller's own)
    grants: Literal["persona", "shared"] = "persona"
    #: a client registered beforehand at the authorization server
    client_id: str | None = None
    #: its secret (``${VAR}`` is expanded; keep it in the environment, not in the file)
    client_secret: str | None = None
    #: how the client authenticates at the token endpoint (default: ``private_key_jwt`` with
    #: a ``private_key_file``, else the best secret method the server's metadata allows)
    token_endpoint_auth_method: (
        Literal["client_secret_basic", "client_secret_post", "none", "private_key_jwt"]
        | None) = None
    #: a PEM RSA private key the client signs its RS256 assertions with (``private_key_jwt``,
    #: RFC 7523; ``${VAR}`` is expanded)
    private_key_file: str | None = None
    #: an HTTPS URL serving this client's metadata document (used as its client id)
    client_metadata_url: str | None = None
    #: scopes to ask for (default: the challenge's, else the resource's ``scopes_supported``)
    scopes: list[str] = Field(default_factory=list)
    #: the loopback port a sign-in (``vmcp auth login``, or one the gateway asks a caller's
    #: client to open) receives the redirect on (0: any free port; a pre-registered client
    #: usually needs a fixed one)
    redirect_port: int = Field(0, ge=0, le=65535)
    #: seconds a person has to finish a sign-in the gateway asked a caller's client to open
    #: (URL-mode elicitation) before the call waiting for it fails
    sign_in_timeout: float = Field(300.0, gt=0)
    #: the name a dynamically registered client is given
    client_name: str = "vmcp"
    #: ``token_exchange``: how the caller's token is described to the server
    #: (``urn:ietf:params:oauth:token-type:access_token`` or ``...:jwt``)
    subject_token_type: Literal["access_token", "jwt"] = "access_token"
    #: ``token_exchange``: the ``audience`` to ask for (the backend's URL always goes as
    #: ``resource``)
    audience: str | None = None


class MountConfig(_Model):
    """One mounted server: where it is, how to reach it, how it is exposed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    #: how to reach the server: ``stdio`` (a command), ``http``, ``sse``, ``ws``
    transport: str = "stdio"
    #: false: configured but not mounted (``vmcp mount ID`` mounts it)
    enabled: bool = True
    # stdio
    #: the program to start (stdio); ``${VAR}`` is expanded
    command: str | None = None
    #: its arguments
    args: list[str] = Field(default_factory=list)
    #: environment variables added for it; use ``${VAR}`` for secrets
    env: dict[str, str] = Field(default_factory=dict)
    #: its working folder
    cwd: str | None = None
    #: resource limits of the spawned process
    limits: LimitSettings = Field(default_factory=LimitSettings)
    # remote (http, sse, ws)
    #: the server's URL (http, sse, ws)
    url: str | None = None
    #: one replica per URL (instead of ``url``)
    urls: list[str] = Field(default_factory=list)
    #: HTTP headers sent to it; use ``${VAR}`` for secrets
    headers: dict[str, str] = Field(default_factory=dict)
    # exposure
    #: put before its tool and prompt names (default: the id; ``""``: none)
    prefix: str | None = None
    #: what the server is for
    description: str = ""
    #: trust the server's tool annotations (readOnlyHint, idempotentHint)
    trusted: bool = False
    #: tools (the backend's names) a read-only persona may call on this mount
    read_only_tools: list[str] = Field(default_factory=list)
    #: per-tool overrides, keyed by the backend's tool name
    tools: dict[str, ToolOverride] = Field(default_factory=dict)
    #: per-prompt overrides, keyed by the backend's prompt name
    prompts: dict[str, PromptOverride] = Field(default_factory=dict)
    #: a tool whose definition changed since it was pinned: withheld, flagged, or let be
    #: (``vmcp install`` writes ``enforce``)
    pinning: Literal["off", "warn", "enforce"] = "warn"
    #: a call of a tool name the server does not list: refused as unknown (``refuse``), or
    #: sent to the server (``forward``, for servers with tools they list nowhere; persona
    #: rules and approvals still apply, a forwarded tool counts as destructive, and it
    #: cannot be pinned, so not with ``pinning = "enforce"``)
    unlisted_tools: Literal["refuse", "forward"] = "refuse"
    # caching (the [cache] table chooses the driver)
    #: time to live of this mount's cached entries (default: [cache] ttl); 0 = never cached
    cache_ttl: float | None = Field(None, ge=0)
    #: per-method time to live for this mount, e.g. {"resources/read" = 30}
    cache_method_ttl: dict[str, float] = Field(default_factory=dict)
    #: tools (the backend's names, fnmatch patterns) whose results are cached
    cache_tools: list[str] = Field(default_factory=list)
    #: resource URIs (the backend's, fnmatch patterns) whose reads are cached
    cache_resources: list[str] = Field(default_factory=list)
    #: cached results are shared by every persona (the backend answers everyone alike)
    cache_public: bool = False
    # routing
    #: seconds a call to it may take (default: [gateway] request_timeout)
    timeout: float | None = Field(None, gt=0)
    #: per-method timeouts, e.g. {"tools/call" = 120}
    method_timeouts: dict[str, float] = Field(default_factory=dict)
    #: hard maximum for a call whose progress notifications keep extending its timeout
    max_timeout: float | None = Field(None, gt=0)
    #: seconds it may take to start (default: [gateway] startup_timeout)
    startup_timeout: float | None = Field(None, gt=0)
    #: how many connections serve the mount (processes, for stdio); calls are balanced
    replicas: int = Field(1, ge=1, le=64)
    #: picks a replica: ``round_robin`` built in; more from vmcp-lb-adaptive
    balancer: str = "round_robin"
    #: settings of the balancer
    balancer_settings: dict[str, Any] = Field(default_factory=dict)
    #: keep every call of one front session on one replica (backends with session state)
    sticky: bool = False
    #: calls at once before more wait (unset: no limit)
    max_in_flight: int | None = Field(None, ge=1)
    #: calls that may wait beyond ``max_in_flight`` before more are refused
    max_queue: int = Field(0, ge=0)
    #: the circuit breaker of each replica
    circuit: CircuitSettings = Field(default_factory=CircuitSettings)
    #: retrying idempotent calls on another replica
    retry: RetrySettings = Field(default_factory=RetrySettings)
    #: periodic pings
    health: HealthSettings = Field(default_factory=HealthSettings)
    #: restarting a backend that exits
    restart: RestartSettings = Field(default_factory=RestartSettings)
    #: who shares a connection to the backend: every caller (``shared``), one front session
    #: (``session``: its own process for stdio), or one persona (``persona``)
    isolation: Literal["shared", "session", "persona"] = "shared"
    #: the connections of an isolated mount
    pool: PoolSettings = Field(default_factory=PoolSettings)
    #: the protocol era vmcp speaks to the backend (unset: ``[gateway] backend_era``)
    era: Literal["auto", "legacy", "modern"] | None = None
    #: sign in to the backend with OAuth (``http``, ``sse`` and ``ws``)
    oauth: OAuthSettings | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not MOUNT_ID_RE.fullmatch(value):
            raise ValueError(
                "mount id must match ^[a-z0-9][a-z0-9-]{0,47}$ (lowercase letters, digits, '-')"
            )
        return value

    @field_validator("cache_method_ttl")
    @classmethod
    def _cache_method_ttl_shape(cls, value: dict[str, float]) -> dict[str, float]:
        return check_method_ttl(value)

    @field_validator("prefix")
    @classmethod
    def _prefix_shape(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
            raise ValueError("prefix must be 0-64 characters from A-Z a-z 0-9 _ . -")
        return value

    @model_validator(mode="after")
    def _overrides_consistent(self) -> MountConfig:
        if not self.trusted:
            annotated = sorted(name for name, o in self.tools.items() if o.annotations)
            if annotated:
                raise ValueError(
                    f"tools: annotations need trusted = true ({', '.join(annotated)})")
        for kind, overrides in (("tools", self.tools), ("prompts", self.prompts)):
            shown: dict[str, str] = {}
            for name, override in overrides.items():
                new = override.name
                if new is None or new == name:
                    continue
                if new in shown or (new in overrides and overrides[new].name in (None, new)):
                    raise ValueError(f"{kind}: {name!r} renamed to {new!r}, a name already shown")
                shown[new] = name
        if self.unlisted_tools == "forward" and self.pinning == "enforce":
            raise ValueError('unlisted_tools: "forward" cannot go with pinning = "enforce": '
                             "a tool the server does not list has no definition to pin")
        return self

    @model_validator(mode="after")
    def _transport_needs(self) -> MountConfig:
        if self.transport == "stdio" and not self.command:
            raise ValueError("command: field required for transport 'stdio'")
        if self.transport != "stdio" and not (self.url or self.urls):
            raise ValueError(f"url: field required for transport {self.transport!r}")
        oauth = self.oauth
        if oauth is not None:
            if self.transport not in ("http", "sse", "ws"):
                raise ValueError("oauth: only the http, sse and ws transports sign in with "
                                 "OAuth")
            if any(name.lower() == "authorization" for name in self.headers):
                raise ValueError("oauth: an Authorization header and oauth exclude each other")
            if (oauth.token_endpoint_auth_method == "private_key_jwt"
                    or oauth.private_key_file is not None) and (
                    oauth.client_id is None or oauth.private_key_file is None):
                raise ValueError("oauth: private_key_jwt needs a client_id and a "
                                 "private_key_file")
            if oauth.grant == "client_credentials" and (
                    oauth.client_id is None or oauth.grants != "shared"):
                raise ValueError("oauth: grant client_credentials needs a client_id and "
                                 'grants = "shared"')
            if oauth.grant == "token_exchange" and (
                    oauth.client_id is None or self.isolation != "session"):
                raise ValueError('oauth: grant token_exchange needs a client_id and '
                                 'isolation = "session" (each caller\'s connection carries '
                                 "the token exchanged for that caller alone)")
            if (oauth.grants == "persona" and self.isolation != "persona"
                    and oauth.grant != "token_exchange"):
                raise ValueError('oauth: per-persona grants need isolation = "persona" '
                                 "(so that no connection carries two callers' grants)")
        return self

    @property
    def replica_count(self) -> int:
        """How many replicas run: one per URL when ``urls`` is set, else ``replicas``."""
        return len(self.urls) if self.urls else self.replicas

    def replica_config(self, index: int) -> MountConfig:
        """The configuration replica ``index`` connects with (its own URL, if listed)."""
        if not self.urls:
            return self
        return self.model_copy(update={"url": self.urls[index]})

    @property
    def exposed_prefix(self) -> str:
        """The prefix tool and prompt names get (the id unless set; may be empty)."""
        return self.id if self.prefix is None else self.prefix


class ClusterSettings(_Model):
    """State shared by the gateway instances behind one load balancer (``[cluster]``): with
    a Redis URL set, any instance serves any handshake-era Streamable HTTP session. Unset,
    every session lives in its process's memory."""

    #: the shared-state driver: ``redis`` from the ``vmcp-cluster-redis`` plugin
    driver: str = "redis"
    #: the Redis every instance shares, e.g. ``redis://redis:6379/0``. Unset:
    #: ``VMCP_REDIS_URL``; unset too: no cluster
    redis_url: str | None = Field(None, repr=False)
    #: this instance's name, the first part of its session ids (``<instance>.<random>``) so a
    #: proxy may route on it. Unset: ``VMCP_INSTANCE``, else generated per process. Unique
    instance: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,40}$")
    #: the prefix of every key and channel; one per deployment sharing a Redis
    key_prefix: str = Field("vmcp", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    #: seconds between heartbeats (and Redis health checks); a heartbeat lives three of them
    heartbeat_interval: float = Field(5.0, gt=0)
    #: seconds one Redis command may take before the instance goes on without it
    timeout: float = Field(0.5, gt=0)
    #: events kept per session's standalone-stream log in Redis (approximately)
    stream_max_events: int = Field(1000, ge=10)

    def url(self) -> str | None:
        """The Redis URL in effect (``redis_url``, else ``VMCP_REDIS_URL``); None: no cluster."""
        return self.redis_url or os.environ.get("VMCP_REDIS_URL") or None

    def instance_id(self) -> str:
        """This instance's name (``instance``, else ``VMCP_INSTANCE``, else a new random one:
        call once per process)."""
        return self.instance or os.environ.get("VMCP_INSTANCE") or secrets.token_hex(3)


class VmcpConfig(_Model):
    """The whole effective configuration."""

    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    #: settings of the ``vmcp-trace-otel`` plugin (``[otel]``), validated by it
    otel: dict[str, Any] = Field(default_factory=dict)
    #: settings of the ``vmcp-ui-console`` plugin (``[console]``), validated by it
    console: dict[str, Any] = Field(default_factory=dict)
    #: settings of each front transport (``[transports.http]`` host, port ...), validated by its
    #: driver
    transports: dict[str, dict[str, Any]] = Field(default_factory=dict)
    servers: dict[str, MountConfig] = Field(default_factory=dict)
    repositories: dict[str, RepositoryConfig] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _ids_from_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("servers"), dict):
            data = dict(data)
            data["servers"] = {
                key: ({"id": key, **value} if isinstance(value, dict) else value)
                for key, value in data["servers"].items()
            }
        return data


def vmcp_home() -> Path:
    """The state folder: ``$VMCP_HOME`` or ``~/.vmcp``."""
    return Path(os.environ.get("VMCP_HOME") or Path.home() / ".vmcp")


def default_config_path() -> Path:
    """Where ``vmcp.toml`` is read from when ``--config`` is not given."""
    return vmcp_home() / "config" / "vmcp.toml"


def expand_vars(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace ``${VAR}`` with the variable's value (empty when unset)."""
    env = os.environ if environ is None else environ
    return _VAR_RE.sub(lambda m: env.get(m.group(1), ""), value)


def _read_toml(path: Path, texts: dict[Path, str] | None = None) -> dict[str, Any]:
    """The TOML document at ``path``; its text is kept in ``texts`` to locate errors."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror or exc}"]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(str(path), [
            f"line {line}, column {column}: not valid UTF-8 (byte 0x{raw[exc.start]:02x})"
        ]) from exc
    if texts is not None:
        texts[path] = text
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from exc
    except RecursionError as exc:  # tomllib recurses once per nesting level
        raise ConfigError(str(path), ["not valid TOML: arrays or tables nested too deeply"]) \
            from exc


def _table(path: Path, data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` when it is a table ({} when absent); a located error otherwise."""
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise ConfigError(str(path), [
            f"{key}: must be a table ([{key}.<id>] sections), not {type(table).__name__}"])
    return table


def read_table(path: Path, key: str) -> dict[str, Any]:
    """The ``[key]`` table of a TOML state file ({} when the file or the table is absent).

    :raises ConfigError: the file cannot be read, is not TOML, or ``key`` is not a table.
    """
    if not path.exists():
        return {}
    return _table(path, _read_toml(path), key)


def _defaults(name: str) -> dict[str, Any]:
    return tomllib.loads(resources.files("vmcp.defaults").joinpath(name).read_text("utf-8"))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "servers":
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _error_items(exc: ValidationError) -> list[tuple[tuple[str | int, ...], str]]:
    """Each pydantic error as (location, message); a model-level check naming its field
    (``"command: ..."``) has that field added to its location."""
    items = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "field required"
        elif err["type"] == "extra_forbidden":
            msg = "unknown setting"
        if _FIELD_MSG_RE.match(msg):
            field, _, msg = msg.partition(": ")
            loc = (*loc, field)
        items.append((loc, msg))
    return items


def format_errors(exc: ValidationError) -> list[str]:
    """One ``dotted.location: message`` line per pydantic error."""
    return [f"{'.'.join(str(p) for p in loc)}: {msg}" if loc else msg
            for loc, msg in _error_items(exc)]


def _name_at(data: Mapping[str, Any], *path: str, default: str) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, Mapping) else None
    return default if data is None else data


def driver_problems(data: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Every driver name in the configuration ``data`` (as read, before validation) that no
    installed package provides, located."""
    from vmcp.drivernames import install_hint, installed_drivers

    wanted: list[tuple[tuple[str | int, ...], str, Any]] = [
        (("cache", "backend"), "caches", _name_at(data, "cache", "backend", default="memory")),
        (("auth", "driver"), "auth", _name_at(data, "auth", "driver", default="none")),
    ]
    if isinstance(data.get("cluster"), Mapping):
        wanted.append((("cluster", "driver"), "cluster",
                       _name_at(data, "cluster", "driver", default="redis")))
    for table, field, kind, default in (("servers", "transport", "transports", "stdio"),
                                        ("servers", "balancer", "balancers", "round_robin"),
                                        ("repositories", "type", "repositories", None)):
        entries = data.get(table)
        for key, entry in (entries.items() if isinstance(entries, Mapping) else ()):
            name = entry.get(field, default) if isinstance(entry, Mapping) else None
            if name is not None:
                wanted.append(((table, key, field), kind, name))
    problems = []
    installed = installed_drivers()
    for loc, kind, name in wanted:
        names = installed[kind]
        if not isinstance(name, str) or name in names:
            continue  # a name of the wrong type is the model's to report
        hint = install_hint(kind, name)
        message = f"no {_DRIVER_WORDS[kind]} {name!r} (installed: {', '.join(names) or 'none'})"
        problems.append((loc, message + (f"; {hint}" if hint else did_you_mean(name, names))))
    return problems


_DRIVER_WORDS = {"caches": "cache driver", "auth": "auth driver", "transports": "transport",
                 "balancers": "balancer", "repositories": "repository driver",
                 "cluster": "cluster driver"}


def _located(items: list[tuple[tuple[str | int, ...], str]], origin: dict[str, Path],
             source: Path, texts: dict[Path, str]) -> ConfigError:
    """One ConfigError for the file the first problem is in, each problem with its line and,
    for an unknown key, the nearest known one."""
    def file_of(loc: tuple[str | int, ...]) -> Path:
        if len(loc) > 1 and loc[0] == "servers":
            return origin.get(str(loc[1]), source)
        return source

    target = file_of(items[0][0])
    problems = []
    for loc, msg in items:
        if file_of(loc) != target:
            continue
        if msg == "unknown setting":
            msg += did_you_mean(str(loc[-1]), fields_at(VmcpConfig, loc[:-1]))
        dotted = ".".join(str(p) for p in loc)
        line = line_of(texts.get(target, ""), loc)
        problems.append((f"line {line}: " if line else "") + (f"{dotted}: {msg}" if loc else msg))
    return ConfigError(str(target), problems)


def load_config(path: Path | None = None) -> tuple[VmcpConfig, Path]:
    """Read and validate the effective configuration.

    :returns: the config and the path it was read from (which may not exist).
    :raises ConfigError: for the file the problems are in (``servers.toml`` for its
        mounts), one message per problem, with its line and a suggestion for a misspelt key.
    """
    source = path or default_config_path()
    data = _defaults("vmcp.toml")
    user: dict[str, Any] = {}
    texts: dict[Path, str] = {}
    if path is not None or source.exists():
        user = _read_toml(source, texts)
    data = _merge(data, user)
    servers: dict[str, Any] = dict(_table(source, user, "servers"))
    origin = dict.fromkeys(servers, source)
    servers_file = source.parent / "servers.toml"
    has_servers_file = servers_file.exists()
    if has_servers_file:
        from_file = _table(servers_file, _read_toml(servers_file, texts), "servers")
        servers.update(from_file)
        origin.update(dict.fromkeys(from_file, servers_file))
    if not servers and not has_servers_file and "servers" not in user:
        servers = _defaults("servers.toml")["servers"]
    data["servers"] = servers
    # Driver names first: what a mount needs depends on its transport, so a misspelt one
    # would otherwise be reported as a missing url.
    problems = driver_problems(data)
    try:
        config = VmcpConfig.model_validate(data)
    except ValidationError as exc:
        wrong = {loc[:2] for loc, _ in problems}
        problems += [(loc, msg) for loc, msg in _error_items(exc) if loc[:2] not in wrong]
    if problems:
        raise _located(problems, origin, source, texts)
    return config, source


def save_toml_text(path: Path, text: str) -> None:
    """Write a config file atomically, creating its folder."""
    atomic_write_text(path, text)


def python_executable() -> str:
    """The interpreter running vmcp, exported as ``${VMCP_PYTHON}`` for mount commands."""
    return sys.executable
