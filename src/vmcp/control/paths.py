"""Where a gateway instance keeps its run-time files under ``$VMCP_HOME``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vmcp.config import vmcp_home


@dataclass(frozen=True)
class RunPaths:
    """The run-time files of the gateway of one home folder."""

    home: Path

    @classmethod
    def current(cls) -> RunPaths:
        """The paths for ``$VMCP_HOME`` (or ``~/.vmcp``)."""
        return cls(vmcp_home().expanduser().absolute())

    @property
    def run_dir(self) -> Path:
        """``run/``: pid file, lock and control socket (owner-only)."""
        return self.home / "run"

    @property
    def pid_file(self) -> Path:
        """``run/vmcp.pid``: the running gateway's process id."""
        return self.run_dir / "vmcp.pid"

    @property
    def lock_file(self) -> Path:
        """``run/vmcp.lock``: held (``flock``) by the running gateway for its whole life."""
        return self.run_dir / "vmcp.lock"

    @property
    def socket(self) -> Path:
        """``run/control.sock``: the control endpoint."""
        return self.run_dir / "control.sock"

    @property
    def logs_dir(self) -> Path:
        """``logs/``."""
        return self.home / "logs"

    @property
    def log_file(self) -> Path:
        """``logs/vmcp.log``: a detached gateway's log (rotated)."""
        return self.logs_dir / "vmcp.log"

    @property
    def output_file(self) -> Path:
        """``logs/vmcp.out``: a detached gateway's raw stderr (start-up failures)."""
        return self.logs_dir / "vmcp.out"

    def make_run_dir(self) -> None:
        """Create ``run/`` readable by the owner only."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.chmod(0o700)
