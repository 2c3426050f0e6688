"""The official MCP conformance suite (``@modelcontextprotocol/conformance``, pinned in
``conformance_suite``) against vmcp, in both eras (``--spec-version 2025-11-25`` and
``2026-07-28``).

- Server scenarios: ``vmcp start -t http`` mounts ``conformance_server.py`` (an SDK server
  serving both eras) with an empty prefix, so the suite sees its names unchanged, over stdio
  and over HTTP, each in the handshake era (the shipped default: over HTTP a call's response
  stream relates the backend's requests to it, which bridging a 2026-07-28 client to this
  handshake-era session needs; over stdio nothing does) and with ``era = "auto"`` (vmcp
  speaks 2026-07-28 to it, and bridges the handshake-era scenarios' clients to it). Through
  the ``auto`` mounts every scenario of both eras must pass with no failed check and no
  warning. The fixture is also run
  directly, where it must pass everything, so a failure through vmcp is vmcp's.
- The suite's reference server (``conformance_reference/``), directly and behind vmcp (mounted
  in the handshake era for that era's scenarios, and with ``era = "auto"``, so spoken to in
  2026-07-28, for the modern ones): every scenario it passes directly must pass through vmcp.
- Client scenarios, the authorization ones (``auth/...``) included: ``conformance_client.py``
  puts vmcp between the SDK's ``Client`` and the suite's scenario server, so the suite judges
  vmcp's back side; in an authorization scenario it also acts as the person who runs the
  ``vmcp auth login`` commands vmcp names and follows the sign-in link.

One test per scenario, so what fails is visible; what vmcp cannot pass yet is marked
``xfail(strict=True)`` with the reason, and turns into a failure the day it passes. Each era's
server run happens once per target (on first use) and is shared by its scenarios' tests.
The suite and Node 22 are installed with npm on first use; without npm the tests are skipped.

The client scenarios are in ``test_conformance_client.py``, ``test_conformance_auth.py`` and
``test_conformance_auth_modern.py`` (files of their own, so that xdist, which keeps a file on
one worker, can run them beside these); the scenario lists and expected failures they share
are in ``conformance_cases.py``.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from conformance_cases import (
    AUTH_SCENARIOS,
    CLIENT_SCENARIOS,
    FIXTURE_MOUNTS,
    REFERENCE_FAILS,
    REFERENCE_LEGACY,
    REFERENCE_MODERN,
    SERVER_SCENARIOS,
    cases,
)
from conformance_runs import server_leg
from conformance_suite import LEGACY, MODERN, ScenarioResult, Suite

pytestmark = pytest.mark.timeout(900)  # the first run downloads Node 22 and the suite


class Legs:
    """Each era's server run against each target, made on first use and kept."""

    def __init__(self, suite: Suite, workdir: Path) -> None:
        self.suite, self.workdir = suite, workdir
        self._runs: dict[tuple[str, str], tuple[dict[str, ScenarioResult], str]] = {}

    def results(self, target: str, era: str) -> dict[str, ScenarioResult]:
        """The results of ``era`` against ``target``, by scenario."""
        key = (target, era)
        if key not in self._runs:
            folder = self.workdir / f"{target.replace(' ', '-')}-{era}"
            self._runs[key] = anyio.run(server_leg, self.suite, target, era, folder)
        return self._runs[key][0]

    def passes(self, target: str, era: str, scenario: str) -> None:
        """Assert that ``scenario`` ran and passed (showing its failed checks otherwise)."""
        result = self.results(target, era).get(scenario)
        assert result is not None, f"{scenario} did not run:\n{self._runs[(target, era)][1]}"
        assert result.passed, f"{target}, {era}, {scenario}:\n" + "\n".join(result.failures)


@pytest.fixture(scope="module")
def legs(suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> Legs:
    """The server runs of this module."""
    return Legs(suite, tmp_path_factory.mktemp("conformance"))


@pytest.mark.parametrize("era", [LEGACY, MODERN])
def test_the_pinned_suite_runs_these_scenarios(suite: Suite, era: str) -> None:
    """The lists above are the pinned suite's: a new release cannot add or drop one unseen."""
    assert tuple(suite.server_scenarios(era)) == SERVER_SCENARIOS[era]
    assert tuple(suite.client_scenarios(era)) == CLIENT_SCENARIOS[era]
    assert tuple(suite.auth_scenarios(era)) == AUTH_SCENARIOS[era]


@pytest.mark.parametrize("era", [LEGACY, MODERN])
def test_the_fixture_passes_every_scenario_directly(legs: Legs, era: str) -> None:
    """Served by the SDK alone, the fixture passes everything: it is a fair backend."""
    for scenario in SERVER_SCENARIOS[era]:
        legs.passes("fixture", era, scenario)


@pytest.mark.parametrize(("target", "era", "scenario"),
                         cases(SERVER_SCENARIOS, FIXTURE_MOUNTS))
def test_server_scenario_through_vmcp(legs: Legs, target: str, era: str, scenario: str) -> None:
    """The scenario passes against vmcp fronting the fixture (mounted over stdio or HTTP)."""
    legs.passes(target, era, scenario)


@pytest.mark.parametrize("era", [LEGACY, MODERN])
def test_the_reference_server_fails_only_these_directly(legs: Legs, era: str) -> None:
    """What the reference server fails on its own is known (and so left out below)."""
    results = legs.results("reference", era)
    assert sorted(results) == sorted(SERVER_SCENARIOS[era])
    assert {name for name, result in results.items() if not result.passed} == REFERENCE_FAILS[era]


@pytest.mark.parametrize(("target", "era", "scenario"), [
    *cases({LEGACY: SERVER_SCENARIOS[LEGACY]}, (REFERENCE_LEGACY,), REFERENCE_FAILS),
    *cases({MODERN: SERVER_SCENARIOS[MODERN]}, (REFERENCE_MODERN,), REFERENCE_FAILS)])
def test_reference_scenario_through_vmcp(legs: Legs, target: str, era: str,
                                         scenario: str) -> None:
    """A scenario the reference server passes directly passes with vmcp in front of it."""
    legs.passes(target, era, scenario)
