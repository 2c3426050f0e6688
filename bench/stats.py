"""Small statistics for the benchmarks: percentiles of one run, medians over repeated runs."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


class BenchError(Exception):
    """A target failed or misbehaved; the scenario reports it instead of numbers."""


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    if not values:
        raise BenchError("no samples")
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return float(ordered[rank])


def latency_summary(nanoseconds: Sequence[int]) -> dict[str, float]:
    """p50, p99 and mean of one run's latencies, in microseconds."""
    micros = [n / 1000 for n in nanoseconds]
    return {
        "p50_us": round(percentile(micros, 0.50), 1),
        "p99_us": round(percentile(micros, 0.99), 1),
        "mean_us": round(statistics.fmean(micros), 1),
        "samples": len(micros),
    }


def median_of_runs(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """For each numeric field, the median over the repeated runs."""
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    return {key: round(statistics.median(run[key] for run in runs), 3) for key in keys}
