"""What a manifest's package ``identifier`` and ``version`` may be, per package ecosystem.

They reach a package manager's command line or requirements file, so anything beyond each
ecosystem's own grammar is refused: a name starting with ``-`` would be an option
(``--prefix=/elsewhere``), a newline a second requirement line (``--index-url ...``), and an
npm version such as ``file:/home`` or ``github:x/y`` would install something other than the
package named. Each check raises ``ValueError("<field>: <why>")``.
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

#: PEP 508 project names (a distribution name, no extras, markers or URL)
PYPI_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
#: npm package names: optional ``@scope/``, URL-safe, not starting with ``.``, ``_`` or ``-``
NPM_NAME_RE = re.compile(r"^(?:@[A-Za-z0-9~][A-Za-z0-9._~-]*/)?[A-Za-z0-9~][A-Za-z0-9._~-]*$")
NPM_NAME_MAX = 214
#: an npm version, range (``^1.2``, ``>=1 <2``, ``1.x || 2``) or dist-tag: never a URL,
#: path, alias or git spec (those hold ``:`` or ``/``)
NPM_VERSION_RE = re.compile(r"^[A-Za-z0-9^~<>=*|.+][A-Za-z0-9^~<>=*|.+ -]*$")
_VERSION_MAX = 100


def check_pypi(identifier: str, version: str | None) -> None:
    """A PEP 508 project name and, when given, a PEP 440 version."""
    if not PYPI_NAME_RE.fullmatch(identifier):
        raise ValueError(f"identifier: {identifier!r} is not a PyPI project name (PEP 508: "
                         "letters, digits, '.', '_', '-', starting and ending with a letter or "
                         "digit)")
    if version is None:
        return
    try:
        valid = len(version) <= _VERSION_MAX and not any(c.isspace() for c in version) and (
            Version(version) is not None)
    except InvalidVersion:
        valid = False
    if not valid:
        raise ValueError(f"version: {version!r} is not a PEP 440 version")


def check_npm(identifier: str, version: str | None) -> None:
    """An npm package name and, when given, a version, range or dist-tag."""
    if len(identifier) > NPM_NAME_MAX or not NPM_NAME_RE.fullmatch(identifier):
        raise ValueError(f"identifier: {identifier!r} is not an npm package name ([@scope/]name "
                         "of letters, digits, '.', '_', '~', '-', not starting with '.', '_' or "
                         f"'-', at most {NPM_NAME_MAX} characters)")
    if version is not None and (len(version) > _VERSION_MAX
                                or not NPM_VERSION_RE.fullmatch(version)):
        raise ValueError(f"version: {version!r} is not an npm version, range or tag")


def check_url(field: str, value: str) -> None:
    """An ``http(s)`` URL with no white space (it is passed to an installer as one value)."""
    if not value.startswith(("https://", "http://")) or any(c.isspace() for c in value):
        raise ValueError(f"{field}: {value!r} is not an http(s) URL")
