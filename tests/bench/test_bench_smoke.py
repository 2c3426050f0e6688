"""The benchmark harness runs end to end: ``python -m bench --quick`` gives every scenario numbers.

Only the structure of the results is checked, never a timing: the figures of a quick run on a
busy test machine mean nothing, but a scenario that stopped working shows up here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.scenarios import instructions

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = ("stdio", "http", "modern", "overload", "tools_list", "memory", "startup",
             "warmstart", "tracing", "workers", "soak", "instructions")


def _http_available() -> bool:
    from vmcp.plugins import load_driver

    try:
        load_driver("transports", "http")
    except Exception:
        return False
    return True


@pytest.mark.timeout(420)  # 12 scenarios, each starting its own gateways (workers: 3)
def test_quick_bench_gives_every_scenario_numbers(tmp_path: Path) -> None:
    """One quick run: every scenario ok (HTTP ones may only be skipped without the driver)."""
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=400,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    http = _http_available()
    scenarios = results["scenarios"]
    assert set(scenarios) == set(SCENARIOS)
    counting = instructions.unavailable() is None
    skipped = {*(() if http else ("http", "modern", "overload", "workers", "soak")),
               *(() if counting else ("instructions",))}
    for name in SCENARIOS:
        if name in skipped:
            assert scenarios[name]["status"] == "skipped"
            continue
        assert scenarios[name]["status"] == "ok", scenarios[name]
    if counting:
        counted = scenarios["instructions"]
        assert all(counted["stdio"][name] > 0 for name in ("relay_fast", "gateway"))
        for era in ("http", "modern") if http else ():
            assert counted[era]["direct"] > 0 and counted[era]["gateway"] > 0
    for name in ("gateway", "traced"):
        assert scenarios["tracing"]["targets"][name]["cpu_us_per_call"] >= 0
    for name in ("direct", "relay", "relay_fast", "gateway", "gateway_full"):
        target = scenarios["stdio"]["targets"][name]
        assert target["p50_us"] > 0 and target["calls_per_s"] > 0
    for name in ("direct", "warm", "warm_one_page", "cold"):
        assert scenarios["tools_list"]["targets"][name]["p50_us"] > 0
    for name in ("direct", "gateway_empty", "gateway_one", "gateway_all"):
        assert scenarios["startup"]["targets"][name]["seconds"] > 0
    assert scenarios["startup"]["own_ms"] > 0
    assert scenarios["startup"]["imports"]["modules"] > 0
    for name in ("empty", "cold", "catalog", "warm"):
        assert scenarios["warmstart"]["targets"][name]["seconds"] > 0
    assert scenarios["memory"]["per_mount"]["rss_one_mount_kib"] > 0
    if http:
        levels = scenarios["http"]["levels"]
        assert set(levels) == {"1", "8", "32", "128"}
        for level in levels.values():
            for name in ("direct", "gateway", "gateway_json"):
                assert level[name]["calls_per_s"] > 0 and level[name]["p50_us"] > 0
        for kind in ("idle", "active"):
            figures = scenarios["memory"]["per_session"][kind]
            assert figures["rss_loaded_kib"] > 0 and figures["after_vs_start"] > 0
        soak = scenarios["soak"]
        assert soak["opened"] > soak["sessions_kept"] and soak["closed"] and soak["abandoned"]
        assert soak["samples"] and all(s["tasks"] > 0 and s["fds"] > 0 for s in soak["samples"])
        assert all(f["ratio"] is not None for f in soak["flat"].values())
        assert Path(soak["plot"]).read_text().startswith("<svg")
        assert set(scenarios["overload"]["levels"]) == {"8", "32"}
        for level in scenarios["modern"]["levels"].values():
            for name in ("direct", "gateway"):
                assert level[name]["calls_per_s"] > 0
                # the machine's shares: the clients' is never nothing, a backend's may be
                # below a clock tick in a quick run
                assert level[name]["client_cpu_us_per_call"] > 0
                assert level[name]["backend_cpu_us_per_call"] >= 0
        assert scenarios["overload"]["peak_calls_per_s"] > 0
        assert set(scenarios["workers"]["levels"]) == {"32"}
        for level in scenarios["workers"]["levels"].values():
            assert set(level) == {"1", "2"}
            assert all(t["calls_per_s"] > 0 and t["vs_one_worker"] > 0 for t in level.values())
            # the machine did the work of the run (and at most all its CPUs' worth)
            assert all(0 < t["machine_busy"] <= 1 for t in level.values())
        assert scenarios["workers"]["machine"]["cpus"] > 0
    verdicts = {t["target"]: t["pass"] for t in results["targets"]}
    assert len(verdicts) == 23
    assert all(v is not None for k, v in verdicts.items() if http or "http" not in k.lower())
    assert "targets" in done.stdout
