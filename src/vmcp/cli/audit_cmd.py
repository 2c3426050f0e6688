"""``vmcp audit tail`` and ``vmcp audit query``: read the audit trail ``[audit]`` writes."""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from vmcp.audit.trail import matches, parse_line, read_records
from vmcp.cli.common import config_from_context
from vmcp.cli.completion import complete_persona_names
from vmcp.cli.output import echo_json, table

#: seconds between looks at the file while following it
_FOLLOW_POLL = 0.2
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30s``/``10m``/``2h``/``1d`` ago, or an ISO 8601 time (UTC when it names no zone).

    :raises click.BadParameter: neither.
    """
    found = _DURATION.fullmatch(text.strip())
    if found:
        amount = float(found.group(1))
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[found.group(2)]: amount})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is neither a duration (30s, 10m, 2h, 1d) nor an ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _trail_path(ctx: click.Context) -> Path:
    config, _ = config_from_context(ctx)
    return config.audit.file()


def _show(records: Iterable[dict[str, Any]], as_json: bool) -> None:
    rows = list(records)
    if as_json:
        echo_json(rows)
        return
    table(["TIME", "CALLER", "PERSONA", "MOUNT", "METHOD", "TOOL", "OUTCOME", "MS"],
          [[r.get("time"), r.get("caller"), r.get("persona"), r.get("mount"), r.get("method"),
            r.get("tool") or r.get("target"), r.get("outcome"), r.get("latency_ms")]
           for r in rows])


def _follow(path: Path, position: int, as_json: bool) -> None:
    """Print records appended to ``path`` after byte ``position``, across rotations, until
    interrupted."""
    identity = path.stat().st_ino if path.exists() else None
    while True:
        if path.exists():
            stat = path.stat()
            if stat.st_ino != identity or stat.st_size < position:  # rotated: a new file
                identity, position = stat.st_ino, 0
            if stat.st_size > position:
                with path.open("rb") as handle:
                    handle.seek(position)
                    chunk = handle.read()
                complete = chunk[:chunk.rfind(b"\n") + 1]  # a line being written waits
                position += len(complete)
                for line in complete.decode("utf-8", errors="replace").splitlines():
                    record = parse_line(line)
                    if record is not None:
                        click.echo(_line(record, as_json))
        time.sleep(_FOLLOW_POLL)


def _line(record: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(record, ensure_ascii=False)
    return "  ".join(str(record.get(k) or "-") for k in (
        "time", "caller", "persona", "mount", "method", "tool", "outcome", "latency_ms"))


@click.group("audit")
def audit_group() -> None:
    """Read the audit trail: one record per routed call (enable with [audit] enabled)."""


@audit_group.command("tail")
@click.option("-n", "--lines", "count", type=click.IntRange(min=0), default=20,
              show_default=True, help="How many of the latest records to show.")
@click.option("-f", "--follow", is_flag=True, help="Then print new records as they come.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def tail_command(ctx: click.Context, count: int, follow: bool, as_json: bool) -> None:
    """Show the latest records."""
    path = _trail_path(ctx)
    # Followed from where the reading of the latest stopped: nothing is missed or shown twice.
    position = path.stat().st_size if path.exists() else 0
    latest = deque(read_records(path, position), maxlen=count) if count else deque()
    if not follow:
        _show(latest, as_json)
        return
    for record in latest:
        click.echo(_line(record, as_json))
    try:
        _follow(path, position, as_json)
    except KeyboardInterrupt:
        return


@audit_group.command("query")
@click.option("--persona", shell_complete=complete_persona_names,
              help="Only calls made as this persona.")
@click.option("--tool", help="Only calls of this tool (its name on the backend).")
@click.option("--mount", help="Only calls to this mount.")
@click.option("--since", "since_text", metavar="WHEN",
              help="Only calls since then: 30s, 10m, 2h, 1d, or an ISO 8601 time.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def query_command(ctx: click.Context, persona: str | None, tool: str | None,
                  mount: str | None, since_text: str | None, as_json: bool) -> None:
    """Show the records matching every filter given, oldest first."""
    since = parse_since(since_text) if since_text else None
    path = _trail_path(ctx)
    _show((r for r in read_records(path)
           if matches(r, persona=persona, tool=tool, mount=mount, since=since)), as_json)
