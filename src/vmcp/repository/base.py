"""The repository source driver interface (entry-point group ``vmcp.repositories``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class RawManifest:
    """One manifest as found in a source, before validation."""

    #: where it was found inside the source (a path or URL), for error messages
    location: str
    #: ``server.json`` or ``install.json`` (plus ``MANIFEST.md`` text when present)
    kind: str
    text: str
    readme: str = ""
    #: why the source could not read it (it is then reported as invalid, with this message)
    error: str = ""


class SourceError(Exception):
    """A source cannot be read; the message says why, for the user."""


class RepositorySource(ABC):
    """A source of server manifests: a git repository, an HTTP index, a PyPI index...

    Instances are created with the source's name, URL and the other keys of its config table
    as settings. A driver checks its settings in ``__init__`` and raises ``ValueError`` naming
    a bad or unknown one, so ``vmcp repo add`` refuses them before anything is stored.
    """

    def __init__(self, name: str, url: str, **settings: Any) -> None:
        self.name = name
        self.url = url
        self.settings = settings

    @abstractmethod
    async def fetch(self, workdir: Path) -> list[RawManifest]:
        """Bring the source up to date in ``workdir`` and return every manifest it holds.

        ``workdir`` is the source's own folder, kept between syncs (a clone lives there).
        Raise :class:`SourceError` with a clear message when the source cannot be read;
        invalid single manifests are returned as they are and reported by the caller.
        """
