"""Terminal output shared by the operations commands: tables, JSON, colour on a TTY only.

Exit codes of every command: 0 done; 1 the operation failed or was refused (not running,
already running, unknown mount, a backend error); 2 bad usage or an invalid configuration.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

#: state word -> colour (click drops the colour when stdout is not a terminal)
_COLOURS = {"up": "green", "ok": "green", "closed": "green", "running": "green",
            "down": "red", "failed": "red", "open": "red", "error": "red", "unreachable": "red",
            "starting": "yellow", "restarting": "yellow", "half_open": "yellow",
            "unmounted": "yellow", "disabled": "bright_black", "removed": "bright_black"}


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def coloured(word: str) -> str:
    """``word`` in the colour of the state it names (plain when none)."""
    colour = _COLOURS.get(word)
    return click.style(word, fg=colour) if colour else word


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
          colour_columns: Sequence[int] = ()) -> None:
    """Print aligned columns; the last column is never padded.

    The header row is printed on a terminal only, so piped output is bare rows that
    ``awk``/``cut`` can read (``--json`` is the stable format for scripts).
    """
    header = [[str(c) for c in headers]] if _on_terminal() else []
    cells = header + [["-" if c is None else str(c) for c in r] for r in rows]
    if not cells:
        return
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        parts = []
        for column, (cell, width) in enumerate(zip(row, widths, strict=True)):
            last = column == len(row) - 1
            text = cell if last else cell.ljust(width)
            if (index or not header) and column in colour_columns:
                text = coloured(cell) + ("" if last else " " * (width - len(cell)))
            parts.append(text)
        click.echo("  ".join(parts).rstrip())


#: sign-in states that need nobody (a refreshable grant renews itself on its next use)
SIGNED_IN = frozenset({"valid", "expired, refreshable"})


def sign_in_summary(rows: Sequence[dict[str, Any]]) -> str:
    """One line of who is signed in to a protected mount: ``(service) valid until T;
    alice signed-out``."""
    parts = []
    for row in rows:
        part = f"{row.get('persona') or '(service)'} {row['state']}"
        if row.get("expires") and row["state"] in ("valid", "expiring"):
            part += f" until {row['expires']}"
        parts.append(part)
    return "; ".join(parts)


def _on_terminal() -> bool:
    return sys.stdout.isatty()


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"{click.style('error', fg='red')}: {message}", err=True)
    raise SystemExit(code)


def parse_assignments(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs as tool arguments; a value that parses as JSON is taken as JSON.

    :raises click.BadParameter: a pair has no ``=``.
    """
    arguments: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="ARGS")
        try:
            arguments[key] = json.loads(raw)
        except ValueError:
            arguments[key] = raw
    return arguments
