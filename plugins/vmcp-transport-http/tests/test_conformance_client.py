"""The official MCP conformance suite's client scenarios (other than the authorization ones)
against vmcp's back side, in both eras: see ``test_conformance.py`` (and
``conformance_client.py``, the client the suite drives)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conformance_cases import CLIENT_SCENARIOS, cases
from conformance_runs import check_client_scenario
from conformance_suite import Suite

pytestmark = pytest.mark.timeout(900)  # the first run downloads Node 22 and the suite


@pytest.mark.parametrize(("target", "era", "scenario"),
                         cases(CLIENT_SCENARIOS, ("vmcp back side",)))
def test_client_scenario_through_vmcp(suite: Suite, tmp_path: Path, target: str, era: str,
                                      scenario: str) -> None:
    """The suite's scenario server, mounted in vmcp, sees a conforming client."""
    check_client_scenario(suite, scenario, era, tmp_path)
