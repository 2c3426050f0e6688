"""Recording a remote server (reached by URL): nothing is installed."""

from __future__ import annotations

import re
from pathlib import Path

from vmcp.repository.installed import Launch, Variable
from vmcp.repository.manifest import Remote, ServerManifest
from vmcp.repository.methods.base import InstallMethod, env_name

_TRANSPORTS = {"streamable-http": "http", "sse": "sse"}
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.-]*)\}")


class RemoteMethod(InstallMethod):
    """A ``remotes[]`` entry: the mount gets the URL and headers.

    Header values the user supplies become variables: ``{placeholder}`` in a header value, or a
    header with no value at all, is written as ``${VAR}``; non-secret ones are filled in when
    mounting, secret ones stay references the gateway reads from its environment.
    """

    kind = "remote"

    def __init__(self, manifest: ServerManifest, remote: Remote) -> None:
        super().__init__(manifest)
        self.remote = remote

    def unavailable(self) -> str | None:
        """Always usable (the transport plugin is checked when the gateway mounts it)."""
        return None

    def _headers(self) -> tuple[dict[str, str], list[Variable]]:
        headers: dict[str, str] = {}
        variables: list[Variable] = []
        for header in self.remote.headers:
            value = header.value if header.value is not None else header.default
            if value is None:
                value = "{" + env_name(header.name) + "}"

            def to_ref(match: re.Match[str], header=header) -> str:
                name = env_name(match.group(1))
                if all(v.name != name for v in variables):
                    variables.append(Variable(
                        name=name,
                        description=header.description or f"value for header {header.name}",
                        required=header.is_required,
                        secret=header.is_secret,
                    ))
                return "${" + name + "}"

            headers[header.name] = _PLACEHOLDER_RE.sub(to_ref, value)
        return headers, variables

    def summary(self) -> str:
        """The transport and URL."""
        return f"{self.remote.type} {self.remote.url}"

    def variables(self) -> list[Variable]:
        """The variables the headers refer to."""
        return self._headers()[1]

    def steps(self, target: Path) -> list[str]:
        """Nothing runs: the URL is recorded."""
        return [f"record {self.remote.type} endpoint {self.remote.url} (nothing is installed)"]

    async def install(self, target: Path) -> Launch:
        """Return the URL and headers for the mount."""
        headers, variables = self._headers()
        return Launch(
            transport=_TRANSPORTS[self.remote.type],  # type: ignore[arg-type]
            url=self.remote.url,
            headers=headers,
            variables=variables,
        )
