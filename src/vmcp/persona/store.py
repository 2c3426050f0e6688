"""The persona store: one JSON file per persona under ``$VMCP_HOME/config/personas/``.

Every write is atomic, and every change holds the persona file's lock from its read to its
write, so concurrent commands never lose each other's changes. A file that cannot be read
or does not validate is reported as :class:`PersonaCorrupt` (with the file and the
problems), never skipped in silence.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from vmcp.config import format_errors, vmcp_home
from vmcp.fileutil import atomic_write_text, change_stamp, state_lock
from vmcp.persona.model import NAME_RE, Persona, utcnow

SUFFIX = ".json"

#: file name -> (inode, size, mtime in ns), None for a file too fresh to tell from its next
#: version (:func:`~vmcp.fileutil.change_stamp`): what the gateway polls to notice changes
Fingerprint = dict[str, tuple[int, int, int] | None]


class PersonaError(Exception):
    """A persona operation failed; the message is meant for the user."""


class PersonaNotFound(PersonaError):
    """No persona has this name."""


class PersonaExists(PersonaError):
    """A persona with this name already exists."""


class PersonaCorrupt(PersonaError):
    """A persona file exists but cannot be used; ``path`` and ``problems`` say why."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


class PersonaStore:
    """Reads and writes personas in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def default(cls) -> PersonaStore:
        """The store under ``$VMCP_HOME/config/personas``."""
        return cls(vmcp_home() / "config" / "personas")

    def path(self, name: str) -> Path:
        """The file of persona ``name`` (which must be a valid name)."""
        if not NAME_RE.fullmatch(name):
            raise PersonaError(
                f"invalid persona name {name!r}: use 1-50 of A-Z a-z 0-9 _ -")
        return self.folder / f"{name}{SUFFIX}"

    def names(self) -> list[str]:
        """The names of every persona file, sorted (valid or not)."""
        if not self.folder.is_dir():
            return []
        return sorted(
            p.name.removesuffix(SUFFIX) for p in self.folder.iterdir()
            if p.name.endswith(SUFFIX) and not p.name.startswith(".")
        )

    def exists(self, name: str) -> bool:
        """True when a file for persona ``name`` exists."""
        return self.path(name).exists()

    def load(self, name: str) -> Persona:
        """Read one persona.

        :raises PersonaNotFound: no such file.
        :raises PersonaCorrupt: the file is unreadable, not JSON, invalid, or names another persona.
        """
        path = self.path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise PersonaNotFound(f"unknown persona {name!r}") from exc
        except OSError as exc:
            raise PersonaCorrupt(path, [f"cannot read: {exc.strerror or exc}"]) from exc
        try:
            persona = Persona.model_validate(json.loads(text))
        except json.JSONDecodeError as exc:
            raise PersonaCorrupt(path, [f"not valid JSON: {exc}"]) from exc
        except ValidationError as exc:
            raise PersonaCorrupt(path, format_errors(exc)) from exc
        if persona.name != name:
            raise PersonaCorrupt(path, [f"the file names persona {persona.name!r}"])
        return persona

    def load_all(self) -> tuple[dict[str, Persona], list[PersonaCorrupt]]:
        """Every persona that can be read, and a report for each file that cannot."""
        personas: dict[str, Persona] = {}
        problems: list[PersonaCorrupt] = []
        for name in self.names():
            try:
                personas[name] = self.load(name)
            except PersonaCorrupt as exc:
                problems.append(exc)
            except PersonaError as exc:  # a file whose name is not a valid persona name
                problems.append(PersonaCorrupt(self.folder / f"{name}{SUFFIX}", [str(exc)]))
        return personas, problems

    def save(self, persona: Persona) -> None:
        """Write a persona atomically, stamping its modification time."""
        persona.modified = utcnow()
        text = json.dumps(persona.model_dump(mode="json"), indent=2) + "\n"
        atomic_write_text(self.path(persona.name), text)

    def create(self, name: str, description: str = "") -> Persona:
        """Create a persona with no access at all.

        :raises PersonaExists: when one with this name exists (valid or not).
        """
        with state_lock(self.path(name)):
            if self.exists(name):
                raise PersonaExists(f"persona {name!r} already exists")
            persona = Persona(name=name, description=description)
            self.save(persona)
        return persona

    def update(self, name: str, change: Callable[[Persona], object]) -> Persona:
        """Load a persona, apply ``change`` to it, save it; return it."""
        with state_lock(self.path(name)):
            persona = self.load(name)
            change(persona)
            self.save(persona)
        return persona

    def delete(self, name: str) -> None:
        """Remove a persona's file.

        :raises PersonaNotFound: no such file.
        """
        with state_lock(self.path(name)):
            try:
                self.path(name).unlink()
            except FileNotFoundError as exc:
                raise PersonaNotFound(f"unknown persona {name!r}") from exc

    def fingerprint(self) -> Fingerprint:
        """What identifies the current version of every file (cheap to poll)."""
        found: Fingerprint = {}
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return found
        for entry in entries:
            if entry.name.endswith(SUFFIX) and not entry.name.startswith("."):
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                found[entry.name] = change_stamp(st)
        return found
