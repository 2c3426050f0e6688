"""The official MCP conformance suite against vmcp serving Streamable HTTP.

``vmcp start --transport http`` mounts ``conformance_server.py`` (an SDK server implementing what
the suite's server scenarios expect) with an empty prefix, so the suite sees its names unchanged
through the gateway. Every scenario of ``--suite all`` must pass with no failed check and no
warning. The suite and Node 22 are installed with npm on first use (see ``conformance_suite``);
without npm the test is skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from conformance_suite import Suite, SuiteUnavailable, failed_checks, install, read_results
from http_harness import run_gateway, write_config

FIXTURE = Path(__file__).resolve().parent / "conformance_server.py"
#: seconds the whole suite may take (it runs its scenarios one after another)
SUITE_TIMEOUT = 120.0

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def suite() -> Iterator[Suite]:
    """The installed suite, or a skip when it cannot be installed here."""
    try:
        yield install()
    except SuiteUnavailable as exc:
        pytest.skip(f"conformance suite unavailable: {exc}")


@pytest.mark.timeout(900)  # the first run downloads Node 22 and the suite
async def test_every_scenario_of_the_official_suite_passes(tmp_path: Path, suite: Suite) -> None:
    config = write_config(tmp_path / "vmcp.toml", {
        "transports.http": {"port": 0},
        "servers.conformance": {"command": sys.executable, "args": [str(FIXTURE)], "prefix": ""},
    })
    output = tmp_path / "results"
    async with run_gateway(config, "http") as gateway:
        with anyio.fail_after(SUITE_TIMEOUT):
            run = await anyio.run_process(
                suite.command("server", "--url", gateway.url, "--suite", "all", "-o", str(output)),
                check=False,
            )
    stdout = run.stdout.decode("utf-8", errors="replace")
    summary = stdout[stdout.find("=== SUMMARY ===") :]
    print(summary)

    results = read_results(output)
    expected = suite.server_scenarios()
    failing = sorted(name for name, result in results.items() if not result.passed)
    passed = len(expected) - len(failing)
    print(f"conformance: {passed}/{len(expected)} scenarios passed")
    assert sorted(results) == sorted(expected), "some scenarios did not run"
    assert not failing, "\n".join(failed_checks(output))
    assert run.returncode == 0, stdout + run.stderr.decode("utf-8", errors="replace")
