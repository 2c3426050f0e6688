"""Settings of the WebSocket front, read from ``[transports.ws]``."""

from __future__ import annotations

from pydantic import Field, field_validator

from vmcp.transports.netsec import NetworkFrontSettings, validate_url_path


class WsFrontSettings(NetworkFrontSettings):
    """``[transports.ws]``: where the WebSocket front listens and how it treats clients.

    Host, port, the ``Host``/``Origin`` allow-lists and ``max_message_bytes`` (a larger
    message closes the connection with 1009) come from
    :class:`~vmcp.transports.netsec.NetworkFrontSettings`.
    """

    port: int = Field(3001, ge=0, le=65535)
    #: the one endpoint clients open their WebSocket on
    path: str = "/mcp"
    #: seconds between keep-alive pings (0 turns them off)
    ping_interval: float = Field(20.0, ge=0)
    #: seconds a ping may wait for its pong before the connection is closed (1011)
    ping_timeout: float = Field(20.0, gt=0)
    #: messages queued for a client that does not read before it is disconnected (1008)
    max_queued_messages: int = Field(10_000, ge=1)
    #: negotiate permessage-deflate (saves bandwidth, costs CPU on every message)
    compression: bool = False

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        return validate_url_path(value)
