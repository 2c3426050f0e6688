"""The install-method interface, and what every method shares: arguments and variables."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from vmcp.repository.errors import InstallError
from vmcp.repository.installed import Launch, Variable
from vmcp.repository.manifest import Argument, KeyValueInput, ServerManifest


class InstallMethod(ABC):
    """One way to get a server running: a package to install, or a remote to record."""

    #: the name users pick it by with ``--method`` (``pypi``, ``npm``, ``mcpb``, ``remote``)
    kind: ClassVar[str]

    def __init__(self, manifest: ServerManifest) -> None:
        self.manifest = manifest
        #: values the user gave for the package's arguments (``--arg NAME=VALUE``)
        self.argument_values: dict[str, str] = {}

    @abstractmethod
    def unavailable(self) -> str | None:
        """Why this machine cannot use the method (a missing tool), or None when it can."""

    @abstractmethod
    def summary(self) -> str:
        """What it installs or reaches, in a few words (a package and version, a URL)."""

    @abstractmethod
    def steps(self, target: Path) -> list[str]:
        """What :meth:`install` will run or fetch, one line each, shown before installing."""

    @abstractmethod
    async def install(self, target: Path) -> Launch:
        """Install into ``target`` (an empty folder) and return how to start the server.

        :raises InstallError: any step failed; the caller removes ``target``.
        """

    def variables(self) -> list[Variable]:
        """The environment variables the server reads."""
        return []

    def arguments(self) -> list[Argument]:
        """The command-line arguments of the package (some may need a value from the user)."""
        return []

    def missing_arguments(self) -> list[Argument]:
        """The required arguments that have no value yet, from the manifest or the user."""
        return missing_arguments(self.arguments(), self.argument_values)


def argument_key(arg: Argument) -> str:
    """The NAME a user gives an argument's value by (``--arg NAME=VALUE``): its value hint,
    or its flag without dashes."""
    return arg.value_hint or (arg.name or "").lstrip("-") or "value"


def _value_of(arg: Argument, values: Mapping[str, str]) -> str | None:
    if arg.value is not None:
        return arg.value
    return values.get(argument_key(arg), arg.default)


def missing_arguments(arguments: list[Argument], values: Mapping[str, str]) -> list[Argument]:
    """The required arguments of ``arguments`` that neither the manifest nor ``values``
    give a value."""
    return [arg for arg in arguments if arg.is_required and _value_of(arg, values) is None]


def render_arguments(arguments: list[Argument],
                     values: Mapping[str, str] | None = None) -> list[str]:
    """Command-line words for a manifest's argument list, with the user's ``values``.

    :raises InstallError: a required argument has no value from anywhere.
    """
    values = values or {}
    words: list[str] = []
    for arg in arguments:
        value = _value_of(arg, values)
        if arg.type == "named":
            if not arg.name:
                raise InstallError("a named argument has no name")
            if value is None and arg.is_required:
                raise InstallError(f"argument {arg.name} needs a value the manifest does not give")
            words.extend([arg.name] if value is None else [arg.name, value])
        elif value is not None:
            words.append(value)
        elif arg.is_required:
            raise InstallError(f"argument <{argument_key(arg)}> needs a value: "
                               f"pass --arg {argument_key(arg)}=VALUE")
    return words


def to_variables(inputs: list[KeyValueInput]) -> list[Variable]:
    """The manifest's environment-variable inputs as :class:`Variable` records."""
    return [
        Variable(
            name=i.name,
            description=i.description,
            required=i.is_required,
            secret=i.is_secret,
            default=i.default,
            value=i.value,
        )
        for i in inputs
    ]


def env_name(text: str) -> str:
    """An environment-variable name made from a header or placeholder name."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper() or "VALUE"


def check_command(command: str, args: list[str]) -> Launch:
    """A stdio launch for ``command``, checking that it exists when it is a path."""
    path = Path(command)
    if path.is_absolute() and not path.exists():
        raise InstallError(f"the installed command {command} does not exist")
    return Launch(transport="stdio", command=command, args=args)
