"""Print which conformance scenarios pass, per era, directly and through vmcp.

``uv run python plugins/vmcp-transport-http/tests/conformance_table.py [--server|--client]``
installs the pinned suite (see ``conformance_suite``) and prints two Markdown tables:

- server scenarios, against the fixture and the suite's reference server, each directly and
  mounted behind ``vmcp start -t http``;
- client scenarios (authorization ones left out), on the SDK client alone and on vmcp's back
  side (``conformance_client.py``).

A cell is ``pass``, ``FAIL n/m`` (n of m checks failed or warned) or ``-`` (not run in that
era). Runs go one after another, so the whole table takes a couple of minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

import anyio
from conformance_runs import TARGETS, client_scenario, server_leg
from conformance_suite import ERAS, ScenarioResult, Suite, install


def _cell(result: ScenarioResult | None) -> str:
    if result is None:
        return "-"
    if result.passed:
        return "pass"
    return f"FAIL {len(result.failures)}/{sum(result.counts.values())}"


def _table(title: str, columns: list[str],
           results: dict[tuple[str, str], dict[str, ScenarioResult | None]]) -> str:
    """One row per (era, scenario); one column per run; a count of passes at the bottom."""
    lines = [f"### {title}", "", "| era | scenario | " + " | ".join(columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for era in dict.fromkeys(e for e, _ in results):
        names = sorted({name for (e, _), by_name in results.items() if e == era
                        for name in by_name})
        for name in names:
            cells = [_cell(results.get((era, column), {}).get(name)) for column in columns]
            lines.append(f"| {era} | {name} | " + " | ".join(cells) + " |")
        totals = []
        for column in columns:
            run = results.get((era, column), {})
            totals.append(f"{sum(1 for r in run.values() if r and r.passed)}/{len(names)}")
        lines.append(f"| {era} | **passing** | " + " | ".join(totals) + " |")
    return "\n".join(lines)


async def server_table(suite: Suite, eras: tuple[str, ...], workdir: Path) -> str:
    """Every server scenario of ``eras`` against every target."""
    results: dict[tuple[str, str], dict[str, ScenarioResult | None]] = {}
    for era in eras:
        for name in TARGETS:
            leg_dir = workdir / f"server-{era}-{name.replace(' ', '-')}"
            by_name, _ = await server_leg(suite, name, era, leg_dir)
            results[(era, name)] = dict(by_name)
            for result in by_name.values():
                for line in result.failures:
                    print(f"  {era} {name} {result.scenario}: {line}", file=sys.stderr)
            print(f"server {era} {name}: {sum(r.passed for r in by_name.values())}"
                  f"/{len(by_name)} passed", file=sys.stderr)
    return _table("Server scenarios", list(TARGETS), results)


async def client_table(suite: Suite, eras: tuple[str, ...], workdir: Path) -> str:
    """Every client scenario of ``eras`` on the SDK alone and on vmcp."""
    columns = {"SDK client": True, "vmcp back side": False}
    results: dict[tuple[str, str], dict[str, ScenarioResult | None]] = {}
    for era in eras:
        for column, direct in columns.items():
            run: dict[str, ScenarioResult | None] = {}
            for scenario in suite.client_scenarios(era):
                folder = workdir / f"client-{era}-{direct}-{scenario.replace('/', '_')}"
                result, _ = await client_scenario(suite, scenario, era, folder, direct)
                run[scenario] = result
                print(f"client {era} {column} {scenario}: {_cell(result)}", file=sys.stderr)
                for line in result.failures if result else ():
                    print(f"  {line}", file=sys.stderr)
            results[(era, column)] = run
    return _table("Client scenarios", list(columns), results)


async def main(which: str, eras: tuple[str, ...]) -> None:
    """Install the suite, run what ``which`` names in ``eras``, print the tables."""
    suite = install()
    # the runs print the gateways' logs; the tables alone go to stdout
    with tempfile.TemporaryDirectory(prefix="vmcp-conformance-table-") as tmp, \
            contextlib.redirect_stdout(sys.stderr):
        tables = []
        if which in ("both", "server"):
            tables.append(await server_table(suite, eras, Path(tmp)))
        if which in ("both", "client"):
            tables.append(await client_table(suite, eras, Path(tmp)))
    print("\n\n".join(tables))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--server", dest="which", action="store_const", const="server")
    group.add_argument("--client", dest="which", action="store_const", const="client")
    parser.add_argument("--era", choices=ERAS, help="only this era (default: both)")
    args = parser.parse_args()
    anyio.run(main, args.which or "both", (args.era,) if args.era else ERAS)
