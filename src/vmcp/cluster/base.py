"""The shared-state interface a cluster driver implements, and how the kernel opens one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vmcp.cluster.record import SessionRecord

if TYPE_CHECKING:
    from vmcp.config import VmcpConfig

#: takes one message another instance published (to this instance or to all)
MessageHandler = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """One live instance, from its heartbeat."""

    instance: str
    #: sessions it opened and still holds
    sessions: int
    #: when its heartbeat was written (epoch seconds)
    seen: float
    #: its process id and host name
    pid: int
    host: str


class SharedState(ABC):
    """The store every instance of a deployment shares. Commands raise on failure (the
    caller goes on without shared state); :meth:`problem` says whether the store is
    reachable. Nothing here runs unless ``[cluster]`` is configured.
    """

    def __init__(self, instance: str) -> None:
        #: this instance's name (the first part of the ids it mints)
        self.instance = instance
        #: counts the sessions this instance holds, for its heartbeat
        self.session_count: Callable[[], int] = lambda: 0

    @abstractmethod
    async def start(self) -> None:
        """Begin heartbeats and listening; returns at once even when the store is down
        (both go on trying)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Stop heartbeats and listening, remove this instance's heartbeat, disconnect."""

    @abstractmethod
    def problem(self) -> str | None:
        """Why the store is unusable now (for ``/readyz``), or None when it is reachable."""

    @abstractmethod
    def listen(self, handler: MessageHandler) -> None:
        """Call ``handler`` with every message published to this instance or to all."""

    @abstractmethod
    async def publish(self, instance: str | None, message: dict[str, Any]) -> int:
        """Send ``message`` to one instance's handlers (None: to every instance's); how many
        instances heard it (0: the one named is gone)."""

    @abstractmethod
    async def save_session(self, record: SessionRecord, ttl: float) -> None:
        """Write a session's record, living ``ttl`` seconds unless touched."""

    @abstractmethod
    async def load_session(self, session_id: str) -> SessionRecord | None:
        """A session's record, or None when it expired, ended or never was."""

    @abstractmethod
    async def touch_session(self, session_id: str, ttl: float) -> bool | None:
        """Mark a session seen now, for ``ttl`` more seconds. True: done; False: it has no
        record (lost: write it again); None: it was ended (by DELETE, anywhere)."""

    @abstractmethod
    async def end_session(self, session_id: str, ttl: float) -> None:
        """Remove a session's record and event log; it stays ended for ``ttl`` seconds."""

    @abstractmethod
    async def append_events(
        self, session_id: str, messages: list[dict[str, Any]], ttl: float
    ) -> list[str]:
        """Append messages to a session's standalone-stream log (bounded); their ids, in
        order, which sort as the log does."""

    @abstractmethod
    async def read_events(
        self, session_id: str, after: str | None, block: float
    ) -> list[tuple[str, dict[str, Any]]]:
        """The events after the one with id ``after`` (None: after the last one delivered),
        waiting up to ``block`` seconds for one when there is none yet."""

    @abstractmethod
    async def delivered(self, session_id: str, event_id: str) -> None:
        """Remember the last event of a session's log written to its client."""

    @abstractmethod
    async def instances(self) -> list[InstanceInfo]:
        """Every instance whose heartbeat is alive, by name."""


def open_shared(config: VmcpConfig) -> SharedState | None:
    """The configured cluster driver, not started yet; None when no cluster is configured.

    :raises PluginError: the driver is missing or broken.
    """
    settings = config.cluster
    url = settings.url()
    if url is None:
        return None
    from vmcp.plugins import load_driver

    driver = load_driver("cluster", settings.driver)
    return driver(url=url, instance=settings.instance_id(), prefix=settings.key_prefix,
                  heartbeat_interval=settings.heartbeat_interval, timeout=settings.timeout,
                  stream_max_events=settings.stream_max_events)  # type: ignore[no-any-return]


async def list_instances(config: VmcpConfig) -> list[InstanceInfo]:
    """The live instances of the configured cluster (for ``vmcp status``); empty when no
    cluster is configured.

    :raises Exception: the store cannot be reached (the driver's error).
    """
    state = open_shared(config)
    if state is None:
        return []
    try:
        return await state.instances()
    finally:
        await state.aclose()
