"""The benchmark command: run the scenarios, print the table, write the JSON.

``uv run python -m bench`` from the repository root; ``--quick`` for a few-second check of the
harness (1 repetition, tiny counts), ``--only NAME`` to run some scenarios. Exits 1 when a
scenario failed (a missed target is reported, not an error).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.plot import soak_svg
from bench.procs import REPO
from bench.report import render, targets
from bench.scenarios import (
    http,
    instructions,
    lists,
    memory,
    modern,
    overload,
    soak,
    startup,
    stdio,
    tracing,
    warmstart,
    workers,
)
from bench.settings import BenchSettings
from bench.stats import BenchError

SCENARIOS: dict[str, Callable[[BenchSettings], dict[str, Any]]] = {
    "stdio": stdio.run,
    "http": http.run,
    "modern": modern.run,
    "overload": overload.run,
    "tools_list": lists.run,
    "memory": memory.run,
    "startup": startup.run,
    "warmstart": warmstart.run,
    "tracing": tracing.run,
    "workers": workers.run,
    "soak": soak.run,
    "instructions": instructions.run,
}
RESULTS = REPO / "bench" / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 repetition and tiny counts: checks the harness in seconds")
    parser.add_argument("--reps", type=int, help="repetitions of every measurement")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), default=[],
                        help="run only this scenario (repeatable)")
    parser.add_argument("--minutes", type=float,
                        help="length of the soak scenario (default 30; --quick: 6 seconds)")
    parser.add_argument("--json", type=Path, help="where to write the results "
                        "(default: bench/results/bench-<time>.json)")
    parser.add_argument("--logs", type=Path,
                        help="keep configs and child logs in this folder (default: discarded)")
    parser.add_argument("--gateway-launcher", default="",
                        help="command replacing 'python -m vmcp' for the gateway (experiments)")
    return parser.parse_args(argv)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_scenarios(settings: BenchSettings, names: list[str]) -> dict[str, Any]:
    """Run the named scenarios one after the other; a failure is recorded, not raised."""
    results: dict[str, Any] = {}
    for name in names:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            results[name] = SCENARIOS[name](settings)
        except (BenchError, OSError, ValueError, TimeoutError) as exc:
            traceback.print_exc(file=sys.stderr)
            results[name] = {"status": "error", "error": str(exc)}
        results[name]["elapsed_s"] = round(time.perf_counter() - started, 2)
    return results


def main(argv: list[str] | None = None) -> None:
    """Run, print, write; exit 1 when a scenario failed."""
    args = parse_args(argv)
    settings = BenchSettings.quick() if args.quick else BenchSettings()
    if args.reps:
        settings = settings.with_(reps=args.reps)
    if args.minutes:
        settings = settings.with_(soak_minutes=args.minutes)
    if args.gateway_launcher:
        settings = settings.with_(gateway_launcher=tuple(shlex.split(args.gateway_launcher)))
    names = args.only or list(SCENARIOS)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vmcp-bench-") as scratch:
        workdir = args.logs or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        settings = settings.with_(workdir=workdir)
        scenarios = run_scenarios(settings, names)
    settings_record = {k: v for k, v in dataclasses.asdict(settings).items() if k != "workdir"}
    results: dict[str, Any] = {
        "meta": {
            "mode": "quick" if args.quick else "full",
            "reps": settings.reps,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "commit": _git_commit(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "settings": settings_record,
            # other work on the machine shows up as noise in wall-clock figures
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "scenarios": scenarios,
    }
    results["targets"] = targets(results)
    path = args.json or RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    soaked = scenarios.get("soak", {})
    if soaked.get("status") == "ok":
        plot = path.with_name(f"{path.stem}-soak.svg")
        plot.write_text(soak_svg(soaked), encoding="utf-8")
        soaked["plot"] = str(plot)
    print(render(results))
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults written to {path}")
    if any(r.get("status") == "error" for r in scenarios.values()):
        sys.exit(1)
