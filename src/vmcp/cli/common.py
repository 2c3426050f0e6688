"""Helpers shared by CLI commands."""

from __future__ import annotations

from pathlib import Path

import click

from vmcp.config import ConfigError, VmcpConfig, load_config


def config_from_context(ctx: click.Context) -> tuple[VmcpConfig, Path]:
    """Load the configuration the ``--config`` option names, or exit 2 with located errors."""
    root = ctx.find_root()
    raw = (root.obj or {}).get("config_path")
    try:
        return load_config(Path(raw) if raw else None)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error: {exc.source}: {problem}", err=True)
        raise SystemExit(2) from exc
