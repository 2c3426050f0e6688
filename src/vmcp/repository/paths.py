"""Where the repository system keeps its state under ``$VMCP_HOME``."""

from __future__ import annotations

from pathlib import Path

from vmcp.config import vmcp_home


def repositories_file() -> Path:
    """The configured sources: ``config/repositories.toml``."""
    return vmcp_home() / "config" / "repositories.toml"


def cache_root() -> Path:
    """Per-source work folders (clones, downloads): ``cache/repositories/``."""
    return vmcp_home() / "cache" / "repositories"


def index_file() -> Path:
    """The search index database."""
    return cache_root() / "index.sqlite3"


def installed_root() -> Path:
    """Installed servers: ``installed/servers/<name>/<version>/``."""
    return vmcp_home() / "installed" / "servers"


def changes_lock() -> Path:
    """Held by a command while it changes installed servers or the mount table."""
    return vmcp_home() / "installed" / "changes.lock"
