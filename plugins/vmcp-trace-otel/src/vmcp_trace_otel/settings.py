"""The ``[otel]`` table, and whether tracing is on."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from vmcp.config import ConfigError

#: environment variables naming where traces go: one set turns tracing on
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


class OtelSettings(BaseModel):
    """``[otel]``: on/off, the traces URL and the service name."""

    # Built on first validation: with no ``[otel]`` table (the common case) it never is.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: None: on when an OTLP endpoint variable is set
    enabled: bool | None = None
    #: the OTLP/HTTP traces URL (default: from the ``OTEL_EXPORTER_OTLP_*`` variables)
    endpoint: str | None = None
    #: ``service.name`` (default: ``OTEL_SERVICE_NAME``, else ``vmcp``)
    service_name: str | None = None

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> OtelSettings:
        """Read ``[otel]``.

        :raises ConfigError: naming each bad key.
        """
        if not table:  # the defaults, with no validator to build before the gateway starts
            return cls.model_construct()
        try:
            return cls.model_validate(dict(table))
        except ValidationError as exc:
            problems = [f"otel.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            raise ConfigError("[otel]", problems) from exc

    def active(self, environ: Mapping[str, str] | None = None) -> bool:
        """True when spans are to be made and exported."""
        env = os.environ if environ is None else environ
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return False
        if self.enabled is not None:
            return self.enabled
        return self.endpoint is not None or any(env.get(name) for name in ENDPOINT_VARIABLES)
