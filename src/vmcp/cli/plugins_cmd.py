"""``vmcp plugins``: what installed distributions add to vmcp, and whether it works."""

from __future__ import annotations

import json

import click

from vmcp.plugins import PluginRecord, inventory

_COLUMNS = ("NAME", "VERSION", "DRIVERS", "HOOKS", "STATUS")


@click.group("plugins")
def plugins_group() -> None:
    """Inspect installed plugins and drivers."""


@plugins_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of records.")
def list_command(as_json: bool) -> None:
    """One row per distribution: its drivers (group:name), hooks and status."""
    records = inventory()
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2))
        return
    for line in format_table(records):
        click.echo(line)


def format_table(records: list[PluginRecord]) -> list[str]:
    """The records as aligned text rows under a header row."""
    rows = [list(_COLUMNS)]
    rows.extend(
        [r.name, r.version, ", ".join(r.drivers) or "-", ", ".join(r.hooks) or "-", r.status]
        for r in records
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]
