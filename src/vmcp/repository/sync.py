"""Syncing sources into the search index, several at a time.

Each source fetches into its own work folder (``$VMCP_HOME/cache/repositories/<name>/``).
Its valid manifests replace its previous ones in the index; invalid ones are reported and
skipped. A source that fails (unreachable, driver missing) is reported and keeps what it had,
while the others sync.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from vmcp.config import RepositoryConfig
from vmcp.plugins import PluginError, describe
from vmcp.repository.base import SourceError
from vmcp.repository.index import SearchIndex
from vmcp.repository.parse import ManifestProblem, parse_all
from vmcp.repository.sources import make_source

DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT = 600.0


@dataclass
class SyncResult:
    """What syncing one source did."""

    source: str
    manifests: int = 0
    problems: list[ManifestProblem] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the source was fetched (some manifests may still have been skipped)."""
        return self.error is None


async def sync_one(
    name: str,
    config: RepositoryConfig,
    index: SearchIndex,
    workroot: Path,
    timeout: float = DEFAULT_TIMEOUT,
) -> SyncResult:
    """Fetch one source and store its manifests; never raises for a failing source."""
    result = SyncResult(name)
    started = time.monotonic()
    try:
        source = make_source(name, config)
        workdir = workroot / name
        workdir.mkdir(parents=True, exist_ok=True)
        with anyio.fail_after(timeout):
            raws = await source.fetch(workdir)
    except TimeoutError:
        result.error = f"timed out after {timeout:g}s"
    except (SourceError, PluginError, ValueError, OSError) as exc:
        result.error = str(exc) or describe(exc)
    except Exception as exc:
        result.error = describe(exc)
    if result.error is not None:
        index.record_failure(name, result.error)
    else:
        parsed, result.problems = parse_all(name, raws)
        index.replace_source(name, parsed, skipped=len(result.problems))
        result.manifests = len(parsed)
    result.seconds = time.monotonic() - started
    return result


async def sync_sources(
    sources: dict[str, RepositoryConfig],
    index: SearchIndex,
    workroot: Path,
    on_done: Callable[[SyncResult], None] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[SyncResult]:
    """Sync every source in ``sources``, at most ``concurrency`` at once.

    :param on_done: called with each result as soon as its source finishes (for progress).
    :returns: the results in the order of ``sources``.
    """
    results: dict[str, SyncResult] = {}
    limiter = anyio.Semaphore(max(1, concurrency))

    async def run(name: str, config: RepositoryConfig) -> None:
        async with limiter:
            result = await sync_one(name, config, index, workroot, timeout)
        results[name] = result
        if on_done is not None:
            on_done(result)

    async with anyio.create_task_group() as tg:
        for name, config in sources.items():
            tg.start_soon(run, name, config)
    return [results[name] for name in sources]
