"""Settings of the front servers, read from ``[transports.http]`` and ``[transports.sse]``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vmcp.config import ConfigError, format_errors

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


def _path_shape(value: str) -> str:
    if not value.startswith("/") or any(c in value for c in "?#") or " " in value:
        raise ValueError("must be an absolute URL path such as /mcp (no query, no fragment)")
    return value


class FrontSettings(BaseModel):
    """What every HTTP front server shares: where it listens and what it accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: address to bind; anything but a loopback address needs an auth driver
    host: str = "127.0.0.1"
    #: TCP port; 0 picks a free one (the real port is reported when ready)
    port: int = Field(3000, ge=0, le=65535)
    #: extra ``Host`` header values accepted besides the loopback names and the bind address
    #: (``name`` accepts any port, ``name:port`` one port, ``*`` turns the check off)
    allowed_hosts: list[str] = Field(default_factory=list)
    #: extra ``Origin`` values accepted besides loopback origins (``*`` turns the check off)
    allowed_origins: list[str] = Field(default_factory=list)
    #: largest request body accepted (413 above it)
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024)
    #: seconds between SSE keep-alive comments on an idle stream
    keepalive_interval: float = Field(15.0, gt=0)


class StreamableSettings(FrontSettings):
    """Settings of the Streamable HTTP front (``[transports.http]``)."""

    #: the one MCP endpoint (POST, GET, DELETE)
    path: str = "/mcp"
    #: seconds a session with no request in flight and no open stream lives on (then 404)
    session_idle_timeout: float = Field(1800.0, gt=0)
    #: most sessions open at once; a new one beyond it gets 503
    max_sessions: int = Field(10_000, ge=1)
    #: events kept per SSE stream for replay after ``Last-Event-ID``
    replay_buffer: int = Field(256, ge=1)

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        return _path_shape(value)


class LegacySseSettings(FrontSettings):
    """Settings of the deprecated HTTP+SSE front (``[transports.sse]``)."""

    #: defaults one above the Streamable HTTP port so both fronts can run from one process
    port: int = Field(3001, ge=0, le=65535)
    #: where clients open their event stream (GET)
    sse_path: str = "/sse"
    #: where clients POST their messages (the ``endpoint`` event points here)
    messages_path: str = "/messages"
    #: messages queued for a client that reads too slowly before its stream is closed
    max_queued: int = Field(10_000, ge=1)

    @field_validator("sse_path", "messages_path")
    @classmethod
    def _check_paths(cls, value: str) -> str:
        return _path_shape(value)


SettingsT = TypeVar("SettingsT", bound=FrontSettings)


def parse_settings(model: type[SettingsT], name: str, raw: Mapping[str, Any]) -> SettingsT:
    """Validate one ``[transports.<name>]`` table.

    :raises ConfigError: with one located message per problem.
    """
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        problems = [f"transports.{name}.{line}" for line in format_errors(exc)]
        raise ConfigError(f"[transports.{name}]", problems) from exc
