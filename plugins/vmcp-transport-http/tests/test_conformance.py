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
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from conformance_runs import client_scenario, server_leg
from conformance_suite import (
    LEGACY,
    MODERN,
    ScenarioResult,
    Suite,
    SuiteUnavailable,
    install,
)

pytestmark = pytest.mark.timeout(900)  # the first run downloads Node 22 and the suite

SERVER_SCENARIOS = {
    LEGACY: (
        "server-initialize", "server-session-lifecycle", "logging-set-level", "ping",
        "completion-complete", "tools-list", "tools-call-simple-text", "tools-call-image",
        "tools-call-audio", "tools-call-embedded-resource", "tools-call-mixed-content",
        "tools-call-with-logging", "tools-call-error", "tools-call-with-progress",
        "tools-call-sampling", "tools-call-elicitation", "json-schema-2020-12",
        "elicitation-sep1034-defaults", "server-sse-polling", "server-sse-multiple-streams",
        "elicitation-sep1330-enums", "resources-list", "resources-read-text",
        "resources-read-binary", "resources-templates-read", "resources-subscribe",
        "resources-unsubscribe", "prompts-list", "prompts-get-simple", "prompts-get-with-args",
        "prompts-get-embedded-resource", "prompts-get-with-image", "dns-rebinding-protection",
    ),
    MODERN: (
        "server-stateless", "completion-complete", "tools-list", "tools-call-simple-text",
        "tools-call-image", "tools-call-audio", "tools-call-embedded-resource",
        "tools-call-mixed-content", "tools-call-error", "tools-call-with-progress",
        "json-schema-2020-12", "server-sse-multiple-streams", "resources-list",
        "resources-read-text", "resources-read-binary", "resources-templates-read",
        "sep-2164-resource-not-found", "prompts-list", "prompts-get-simple",
        "prompts-get-with-args", "prompts-get-embedded-resource", "prompts-get-with-image",
        "dns-rebinding-protection", "caching", "http-header-validation",
        "http-custom-header-server-validation", "input-required-result-basic-elicitation",
        "input-required-result-basic-sampling", "input-required-result-basic-list-roots",
        "input-required-result-request-state", "input-required-result-multiple-input-requests",
        "input-required-result-multi-round", "input-required-result-missing-input-response",
        "input-required-result-non-tool-request", "input-required-result-result-type",
        "input-required-result-unsupported-methods", "input-required-result-tampered-state",
        "input-required-result-capability-check", "input-required-result-ignore-extra-params",
        "input-required-result-validate-input",
    ),
}
CLIENT_SCENARIOS = {
    LEGACY: ("initialize", "tools_call", "elicitation-sep1034-client-defaults", "sse-retry",
             "json-schema-2020-12-preservation"),
    MODERN: ("tools_call", "request-metadata", "sep-2322-client-request-state",
             "http-standard-headers", "http-custom-headers", "http-invalid-tool-headers",
             "json-schema-ref-no-deref", "json-schema-2020-12-preservation"),
}
_AUTH_BOTH = tuple(f"auth/{name}" for name in (
    "metadata-default", "metadata-var1", "metadata-var2", "metadata-var3", "basic-cimd",
    "scope-from-www-authenticate", "scope-from-scopes-supported", "scope-omitted-when-undefined",
    "scope-step-up", "scope-retry-limit", "token-endpoint-auth-basic",
    "token-endpoint-auth-post", "token-endpoint-auth-none", "pre-registration"))
AUTH_SCENARIOS = {
    LEGACY: _AUTH_BOTH,
    MODERN: (*_AUTH_BOTH, *(f"auth/{name}" for name in (
        "resource-mismatch", "offline-access-scope", "offline-access-not-supported",
        "authorization-server-migration", "iss-supported", "iss-not-advertised",
        "iss-supported-missing", "iss-wrong-issuer", "iss-unexpected", "iss-normalized",
        "metadata-issuer-mismatch"))),
}
#: what the reference server (0.2.0-alpha.11's, on the TypeScript SDK 1.x) fails directly
REFERENCE_FAILS = {
    LEGACY: frozenset(),
    MODERN: frozenset({
        "tools-call-simple-text", "tools-call-image", "tools-call-audio",
        "tools-call-embedded-resource", "tools-call-mixed-content", "tools-call-error",
        "tools-call-with-progress", "http-header-validation",
        "http-custom-header-server-validation", "input-required-result-validate-input",
    }),
}

#: the fixture behind vmcp, mounted over stdio and over HTTP: in the handshake era (the
#: shipped default), and with ``era = "auto"``, so spoken to in 2026-07-28 (where the
#: handshake-era scenarios go through vmcp's bridge to a 2026-07-28 backend)
LEGACY_FIXTURE_MOUNTS = ("fixture via vmcp", "fixture via vmcp over http")
FIXTURE_MOUNTS = (*LEGACY_FIXTURE_MOUNTS, "fixture via vmcp 2026-07-28 back",
                  "fixture via vmcp over http 2026-07-28 back")
#: the reference server behind vmcp: the handshake era's scenarios through a mount in the
#: handshake era (the shipped default), the 2026-07-28 ones through a mount vmcp talks to
#: in 2026-07-28 (era = "auto"), each era as the reference server serves it best
REFERENCE_LEGACY = "reference via vmcp"
REFERENCE_MODERN = "reference via vmcp 2026-07-28 back"

#: why what fails through vmcp's handshake-era mounts (and the reference's) fails
NO_RELATION = ("over stdio nothing relates the backend's elicitation/sampling/roots request "
               "to the call it serves, so vmcp refuses it ('cannot tell which of several "
               "clients ... is for; set isolation = \"session\"') and the call fails instead "
               "of answering input_required")
OWN_KEYS = ("vmcp names the inputRequests of a bridged handshake-era request itself; the "
            "scenario expects the key of the 2026-07-28 form of the call ('user_name'), "
            "which a handshake-era backend never sends")
SESSION_CAPS = ("the handshake-era backend sees vmcp's session capabilities (sampling "
                "declared), not the 2026-07-28 client's, so test_missing_capability runs "
                "instead of answering -32021")


_BRIDGED = ("basic-elicitation", "basic-list-roots", "basic-sampling", "capability-check",
            "missing-input-response", "multi-round", "multiple-input-requests",
            "non-tool-request", "request-state", "result-type", "tampered-state")
#: (target, era, scenario) that fail through vmcp today, and why
NOT_YET: dict[tuple[str, str, str], str] = {
    **{("fixture via vmcp", MODERN, f"input-required-result-{name}"): NO_RELATION
       for name in _BRIDGED},
    ("fixture via vmcp over http", MODERN, "input-required-result-basic-elicitation"): OWN_KEYS,
    **{(target, MODERN, "server-stateless"): SESSION_CAPS for target in LEGACY_FIXTURE_MOUNTS},
}


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
def suite() -> Iterator[Suite]:
    """The installed suite, or a skip when it cannot be installed here."""
    try:
        yield install()
    except SuiteUnavailable as exc:
        pytest.skip(f"conformance suite unavailable: {exc}")


@pytest.fixture(scope="module")
def legs(suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> Legs:
    """The server runs of this module."""
    return Legs(suite, tmp_path_factory.mktemp("conformance"))


def _cases(scenarios: dict[str, tuple[str, ...]], targets: tuple[str, ...],
           leave_out: dict[str, frozenset[str]] | None = None) -> list[object]:
    """One case per target, era and scenario; ``xfail(strict=True)`` for those in NOT_YET."""
    cases: list[object] = []
    for target in targets:
        for era, names in scenarios.items():
            for name in names:
                if leave_out and name in leave_out[era]:
                    continue
                reason = NOT_YET.get((target, era, name))
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                case_id = "-".join(v.replace(" ", "-") for v in (target, era, name))
                cases.append(pytest.param(target, era, name, marks=marks, id=case_id))
    return cases


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
                         _cases(SERVER_SCENARIOS, FIXTURE_MOUNTS))
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
    *_cases({LEGACY: SERVER_SCENARIOS[LEGACY]}, (REFERENCE_LEGACY,), REFERENCE_FAILS),
    *_cases({MODERN: SERVER_SCENARIOS[MODERN]}, (REFERENCE_MODERN,), REFERENCE_FAILS)])
def test_reference_scenario_through_vmcp(legs: Legs, target: str, era: str,
                                         scenario: str) -> None:
    """A scenario the reference server passes directly passes with vmcp in front of it."""
    legs.passes(target, era, scenario)


@pytest.mark.parametrize(("target", "era", "scenario"),
                         _cases(CLIENT_SCENARIOS, ("vmcp back side",)))
def test_client_scenario_through_vmcp(suite: Suite, tmp_path: Path, target: str, era: str,
                                      scenario: str) -> None:
    """The suite's scenario server, mounted in vmcp, sees a conforming client."""
    result, output = anyio.run(client_scenario, suite, scenario, era, tmp_path)
    assert result is not None, f"{scenario} wrote no results:\n{output}"
    assert result.passed, f"{era}, {scenario}:\n" + "\n".join(result.failures) + "\n" + output


@pytest.mark.parametrize(("target", "era", "scenario"),
                         _cases(AUTH_SCENARIOS, ("vmcp back side",)))
def test_auth_scenario_through_vmcp(suite: Suite, tmp_path: Path, target: str, era: str,
                                    scenario: str) -> None:
    """vmcp signs in to the suite's protected scenario server as the spec says (a person
    running the ``vmcp auth login`` commands vmcp names)."""
    result, output = anyio.run(client_scenario, suite, scenario, era, tmp_path)
    assert result is not None, f"{scenario} wrote no results:\n{output}"
    assert result.passed, f"{era}, {scenario}:\n" + "\n".join(result.failures) + "\n" + output
