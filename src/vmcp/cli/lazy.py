"""A click group that imports a command's module only when that command is used.

``vmcp start`` then loads the gateway and nothing of the repository, persona or operations
commands; ``vmcp --help`` imports every module, since it shows each command's summary.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click


def summary(command: click.Command) -> str:
    """The command's first sentence, whole (click's short help cuts it at 45 characters)."""
    if command.short_help:
        return command.short_help
    paragraph = (command.help or "").strip().split("\n\n", 1)[0]
    text = " ".join(paragraph.replace("\b", "").split())
    depth = 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "." and depth <= 0 and (index + 1 == len(text) or text[index + 1] == " "):
            return text[:index]
    return text


def whole_summaries(command: click.Command) -> None:
    """Give every command under the group ``command`` its whole first sentence as the short
    help, so that each group's ``--help`` wraps it instead of cutting it."""
    if not isinstance(command, click.Group):
        return
    for sub in command.commands.values():
        if not sub.short_help:
            sub.short_help = summary(sub)
        whole_summaries(sub)


class LazyGroup(click.Group):
    """A group whose built-in commands are named up front and imported on first use.

    ``lazy`` maps a command name to ``"module:attribute"``. The module is imported when the
    command is invoked or listed (``--help``, completion); from then on the command is an
    ordinary member of :attr:`commands`. Commands added with :meth:`add_command` behave as
    in any group; a plugin may add its own with :meth:`add_lazy_command` instead.
    """

    def __init__(self, *args: Any, lazy: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def add_lazy_command(self, name: str, target: str) -> None:
        """Name a command whose module (``target``: ``"module:attribute"``) is imported only
        when it is used, so that a plugin's command costs nothing to every other command."""
        self.lazy[name] = target

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, loaded or not, sorted."""
        return sorted({*self.commands, *self.lazy})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command with its whole first sentence, wrapped instead of cut."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, summary(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Add ``cmd``; a group's own commands then list their whole first sentences too
        (built-in and plugin groups alike)."""
        whole_summaries(cmd)
        super().add_command(cmd, name)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command named ``cmd_name``, importing its module the first time."""
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in self.lazy:
            module_name, _, attribute = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            self.add_command(command, cmd_name)
        return command
