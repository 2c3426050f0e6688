"""Server manifests in the official MCP registry ``server.json`` format.

The models follow the registry's schema (camelCase on the wire): a server has a ``name``,
``description`` and ``version``, ``packages`` (``registryType`` ``pypi``, ``npm``, ``mcpb``...)
and ``remotes`` reached by URL. Unknown fields are kept out of the models but the original
document is stored as it was, so ``vmcp show`` prints the full manifest.

:func:`manifest_from_data` validates one decoded document and raises :class:`ManifestError`
saying what is wrong.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from vmcp.config import format_errors
from vmcp.repository.package_specs import check_npm, check_pypi, check_url
from vmcp.repository.versions import check_version

NAME_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9.-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$")
_PUBLISHER_META = "io.modelcontextprotocol.registry/publisher-provided"


class ManifestError(ValueError):
    """A manifest is not valid; the message says why (without the location)."""


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class Input(_Wire):
    """A value the user may or must supply (the registry's ``Input``)."""

    description: str = ""
    is_required: bool = False
    is_secret: bool = False
    format: str = "string"
    value: str | None = None
    default: str | None = None
    choices: list[str] = Field(default_factory=list)


class KeyValueInput(Input):
    """A named input: an environment variable or an HTTP header."""

    name: str = Field(min_length=1, max_length=200)


class Argument(Input):
    """A command-line argument: ``positional`` (a value) or ``named`` (``--flag [value]``)."""

    type: Literal["positional", "named"] = "positional"
    name: str | None = None
    value_hint: str | None = None


class PackageTransport(_Wire):
    """How a package's server talks: ``stdio``, or HTTP on a URL once it runs."""

    type: Literal["stdio", "streamable-http", "sse"] = "stdio"
    url: str | None = None
    headers: list[KeyValueInput] = Field(default_factory=list)


class Package(_Wire):
    """One way to install and run the server locally."""

    registry_type: str = Field(min_length=1)
    registry_base_url: str | None = None
    identifier: str = Field(min_length=1, max_length=500)
    version: str | None = None
    file_sha256: str | None = Field(None, alias="fileSha256")
    runtime_hint: str | None = None
    transport: PackageTransport = Field(default_factory=PackageTransport)
    runtime_arguments: list[Argument] = Field(default_factory=list)
    package_arguments: list[Argument] = Field(default_factory=list)
    environment_variables: list[KeyValueInput] = Field(default_factory=list)

    @field_validator("file_sha256")
    @classmethod
    def _hex_digest(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("must be 64 hexadecimal digits")
        return value.lower() if value else value

    @model_validator(mode="after")
    def _ecosystem_grammar(self) -> Package:
        """The identifier and version of a package vmcp installs follow its ecosystem's
        grammar, so that neither can act as a package-manager option or another spec."""
        if self.registry_type == "pypi":
            check_pypi(self.identifier, self.version)
        elif self.registry_type == "npm":
            check_npm(self.identifier, self.version)
        elif self.registry_type == "mcpb":
            check_url("identifier", self.identifier)
        if self.registry_base_url is not None:
            check_url("registryBaseUrl", self.registry_base_url)
        return self


class Remote(_Wire):
    """A server reached by URL, with nothing to install."""

    type: Literal["streamable-http", "sse"]
    url: str = Field(min_length=1)
    headers: list[KeyValueInput] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value


class ServerManifest(_Wire):
    """One version of one server, as the registry describes it."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=2000)
    version: str
    title: str | None = None
    website_url: str | None = None
    tags: list[str] = Field(default_factory=list)
    packages: list[Package] = Field(default_factory=list)
    remotes: list[Remote] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not NAME_RE.fullmatch(value):
            raise ValueError("must look like 'namespace/name' (letters, digits, '.', '-', '_')")
        return value

    @field_validator("version")
    @classmethod
    def _version_shape(cls, value: str) -> str:
        return check_version(value)

    @property
    def short_name(self) -> str:
        """The part of the name after the namespace."""
        return self.name.rsplit("/", 1)[-1]

    @property
    def display_title(self) -> str:
        """The title, or the short name when there is none."""
        return self.title or self.short_name


def manifest_from_data(data: Any) -> ServerManifest:
    """Validate one ``server.json`` document (already decoded from JSON)."""
    if not isinstance(data, dict):
        raise ManifestError("a manifest must be a JSON object")
    data = {**data, "tags": _tags(data)}
    try:
        manifest = ServerManifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError("; ".join(format_errors(exc))) from exc
    if not manifest.packages and not manifest.remotes:
        raise ManifestError("no packages and no remotes: nothing to install")
    return manifest


def _tags(data: dict[str, Any]) -> list[str]:
    """Tags from a top-level ``tags`` list or the publisher-provided ``_meta``."""
    meta = data.get("_meta")
    found = data.get("tags")
    if found is None and isinstance(meta, dict) and isinstance(meta.get(_PUBLISHER_META), dict):
        found = meta[_PUBLISHER_META].get("tags")
    if not isinstance(found, list):
        return []
    return [str(tag) for tag in found if isinstance(tag, str | int)]


def decode_json(text: str) -> Any:
    """Decode JSON text, raising :class:`ManifestError` with the line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
