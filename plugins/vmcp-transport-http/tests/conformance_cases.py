"""The scenarios of the pinned conformance suite, what fails through vmcp today and why, and
the test cases made of them; shared by ``test_conformance.py`` (server scenarios),
``test_conformance_client.py``, ``test_conformance_auth.py`` and
``test_conformance_auth_modern.py`` (client scenarios)."""

from __future__ import annotations

import pytest
from conformance_suite import LEGACY, MODERN

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


def cases(scenarios: dict[str, tuple[str, ...]], targets: tuple[str, ...],
          leave_out: dict[str, frozenset[str]] | None = None) -> list[object]:
    """One case per target, era and scenario; ``xfail(strict=True)`` for those in NOT_YET."""
    made: list[object] = []
    for target in targets:
        for era, names in scenarios.items():
            for name in names:
                if leave_out and name in leave_out[era]:
                    continue
                reason = NOT_YET.get((target, era, name))
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                case_id = "-".join(v.replace(" ", "-") for v in (target, era, name))
                made.append(pytest.param(target, era, name, marks=marks, id=case_id))
    return made
