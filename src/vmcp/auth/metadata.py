"""OAuth discovery for the front side: RFC 9728 protected-resource metadata and challenges.

An HTTP front serves :func:`protected_resource_metadata` as JSON at every path
:func:`metadata_paths` returns, and sends :attr:`AuthError.www_authenticate` as the
``WWW-Authenticate`` header of a 401 or 403. The challenge names the metadata URL
(``resource_metadata``), which is how an MCP client finds the authorization server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, found case-insensitively in any mapping."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def metadata_url(resource: str) -> str:
    """Where the metadata of ``resource`` lives (RFC 9728 §3.1: the well-known segment goes
    between the host and the resource's path)."""
    parts = urlsplit(resource)
    return urlunsplit((parts.scheme, parts.netloc, WELL_KNOWN + parts.path.rstrip("/"), "", ""))


def metadata_paths(mcp_path: str) -> list[str]:
    """The paths an HTTP front serving MCP at ``mcp_path`` answers with the metadata.

    MCP clients try ``/.well-known/oauth-protected-resource/<mcp path>`` first, then the
    root form.
    """
    path = mcp_path.rstrip("/")
    return list(dict.fromkeys([WELL_KNOWN + path, WELL_KNOWN]))


def resource_metadata_url(resource: str | None, headers: Mapping[str, str]) -> str | None:
    """The metadata URL for a challenge: from the configured ``resource`` when set, else the
    root metadata URL of the host the client addressed (None without a ``Host`` header)."""
    if resource:
        return metadata_url(resource)
    host = header(headers, "host")
    return f"http://{host}{WELL_KNOWN}" if host else None


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def www_authenticate(
    resource_metadata: str | None,
    *,
    error: str | None = None,
    description: str | None = None,
    scope: str | None = None,
) -> str:
    """A ``WWW-Authenticate: Bearer ...`` value (RFC 6750 §3 with RFC 9728's parameter)."""
    params = [
        (key, value) for key, value in (
            ("error", error),
            ("error_description", description),
            ("scope", scope),
            ("resource_metadata", resource_metadata),
        ) if value
    ]
    if not params:
        return "Bearer"
    return "Bearer " + ", ".join(f"{key}={_quoted(value)}" for key, value in params)


def protected_resource_metadata(auth: Any, resource: str) -> dict[str, Any] | None:
    """The RFC 9728 metadata document for this gateway, or None when no auth is configured.

    :param auth: the ``[auth]`` settings (``VmcpConfig.auth``).
    :param resource: the URL the client reached the MCP endpoint at; the configured
        ``[auth] resource`` wins over it.
    """
    if auth.driver == "none":
        return None
    document: dict[str, Any] = {
        "resource": auth.resource or resource,
        "authorization_servers": list(auth.authorization_servers),
        "bearer_methods_supported": ["header"],
        "resource_name": "vmcp gateway",
    }
    scopes = (auth.model_extra or {}).get("required_scopes")
    if scopes:
        document["scopes_supported"] = list(scopes)
    return document
