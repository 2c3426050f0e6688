"""The official MCP conformance suite's authorization client scenarios (``auth/...``) of
2026-07-28 against vmcp's back side: see ``test_conformance.py`` and
``test_conformance_auth.py`` (the handshake era's)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conformance_cases import AUTH_SCENARIOS, cases
from conformance_runs import check_client_scenario
from conformance_suite import MODERN, Suite

pytestmark = pytest.mark.timeout(900)  # the first run downloads Node 22 and the suite


@pytest.mark.parametrize(("target", "era", "scenario"),
                         cases({MODERN: AUTH_SCENARIOS[MODERN]}, ("vmcp back side",)))
def test_auth_scenario_through_vmcp(suite: Suite, tmp_path: Path, target: str, era: str,
                                    scenario: str) -> None:
    """vmcp signs in to the suite's protected scenario server as the spec says (a person
    running the ``vmcp auth login`` commands vmcp names)."""
    check_client_scenario(suite, scenario, era, tmp_path)
