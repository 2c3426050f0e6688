"""Errors of the install side of the repository system."""

from __future__ import annotations


class InstallError(Exception):
    """An install, update, mount or uninstall cannot be done; the message says why."""
