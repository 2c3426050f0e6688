"""The ``[console]`` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, ValidationError

from vmcp.config import ConfigError, format_errors
from vmcp.transports.netsec import NetworkFrontSettings


class ConsoleSettings(NetworkFrontSettings):
    """``[console]``: off by default; where it listens, and who may use it."""

    enabled: bool = False
    #: personas whose tokens may use the console when it asks for one
    admins: list[str] = Field(default_factory=list)
    #: seconds between two points of the traffic charts
    chart_interval: float = Field(2.0, gt=0, le=300)
    #: how many points each chart shows
    chart_points: int = Field(90, ge=2, le=1000)


def read_settings(table: Mapping[str, Any]) -> ConsoleSettings:
    """Read ``[console]``; :class:`~vmcp.config.ConfigError` naming each bad key."""
    try:
        return ConsoleSettings.model_validate(dict(table))
    except ValidationError as exc:
        raise ConfigError("[console]", [f"console.{line}" for line in format_errors(exc)]) from exc
