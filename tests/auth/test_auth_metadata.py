"""RFC 9728 protected-resource metadata and ``WWW-Authenticate`` challenges."""

from __future__ import annotations

from vmcp.auth.bearer import bearer_token
from vmcp.auth.metadata import (
    metadata_paths,
    metadata_url,
    protected_resource_metadata,
    resource_metadata_url,
    www_authenticate,
)
from vmcp.config import AuthSettings


def test_metadata_url_inserts_the_well_known_segment() -> None:
    assert metadata_url("https://gw.example/mcp") == (
        "https://gw.example/.well-known/oauth-protected-resource/mcp")
    assert metadata_url("https://gw.example/") == (
        "https://gw.example/.well-known/oauth-protected-resource")
    assert metadata_paths("/mcp") == [
        "/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]
    assert metadata_paths("/") == ["/.well-known/oauth-protected-resource"]
    assert resource_metadata_url(None, {"host": "127.0.0.1:9"}) == (
        "http://127.0.0.1:9/.well-known/oauth-protected-resource")
    assert resource_metadata_url(None, {}) is None


def test_challenges() -> None:
    assert www_authenticate(None) == "Bearer"
    assert www_authenticate("https://m", error="insufficient_scope", scope="a b",
                            description='say "no"') == (
        'Bearer error="insufficient_scope", error_description="say \\"no\\"", scope="a b", '
        'resource_metadata="https://m"')


def test_metadata_document() -> None:
    assert protected_resource_metadata(AuthSettings(), "http://x/mcp") is None
    settings = AuthSettings.model_validate({
        "driver": "jwt", "authorization_servers": ["https://as.example"],
        "required_scopes": ["mcp"]})
    assert protected_resource_metadata(settings, "http://127.0.0.1:5/mcp") == {
        "resource": "http://127.0.0.1:5/mcp",
        "authorization_servers": ["https://as.example"],
        "bearer_methods_supported": ["header"],
        "resource_name": "vmcp gateway",
        "scopes_supported": ["mcp"],
    }
    settings = AuthSettings(driver="token", resource="https://gw.example/mcp")
    document = protected_resource_metadata(settings, "http://ignored/mcp")
    assert document is not None and document["resource"] == "https://gw.example/mcp"


def test_bearer_token() -> None:
    assert bearer_token({"Authorization": "Bearer abc"}) == "abc"
    assert bearer_token({"authorization": "bearer  abc "}) == "abc"
    assert bearer_token({"Authorization": "Basic abc"}) is None
    assert bearer_token({"Authorization": "Bearer "}) is None
    assert bearer_token({}) is None
