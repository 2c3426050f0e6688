"""Install methods, and choosing one for a manifest.

A manifest offers its packages (``pypi``, ``npm``, ``mcpb``) and remotes; :func:`methods_for`
lists the ones vmcp knows in order of preference, and :func:`choose_method` picks the first
usable one, or the one asked for with ``--method``.
"""

from __future__ import annotations

from vmcp.repository.errors import InstallError
from vmcp.repository.manifest import ServerManifest
from vmcp.repository.methods.base import InstallMethod
from vmcp.repository.methods.bundle import BundleMethod
from vmcp.repository.methods.npm import NpmMethod
from vmcp.repository.methods.pypi import PypiMethod
from vmcp.repository.methods.remote import RemoteMethod

PACKAGE_METHODS: dict[str, type[PypiMethod | NpmMethod | BundleMethod]] = {
    "pypi": PypiMethod,
    "npm": NpmMethod,
    "mcpb": BundleMethod,
}
METHOD_NAMES = (*PACKAGE_METHODS, "remote")

__all__ = ["METHOD_NAMES", "InstallMethod", "choose_method", "methods_for"]


def methods_for(manifest: ServerManifest) -> list[InstallMethod]:
    """Every install method the manifest offers that vmcp knows, preferred first."""
    found: list[InstallMethod] = []
    for kind, cls in PACKAGE_METHODS.items():
        found.extend(cls(manifest, p) for p in manifest.packages if p.registry_type == kind)
    found.extend(RemoteMethod(manifest, r) for r in manifest.remotes)
    return found


def choose_method(manifest: ServerManifest, wanted: str | None = None) -> InstallMethod:
    """The method to install with: ``wanted`` if given, else the first usable one.

    :raises InstallError: nothing matches, saying what the manifest offers and why each
        candidate cannot be used.
    """
    candidates = methods_for(manifest)
    if wanted is not None:
        candidates = [m for m in candidates if m.kind == wanted]
    reasons = []
    for method in candidates:
        why = method.unavailable()
        if why is None:
            return method
        reasons.append(f"{method.kind}: {why}")
    offered = sorted({p.registry_type for p in manifest.packages}
                     | ({"remote"} if manifest.remotes else set()))
    detail = "; ".join(reasons) if reasons else f"it offers {', '.join(offered) or 'nothing'}"
    what = f"method {wanted!r}" if wanted else "a usable install method"
    raise InstallError(f"{manifest.name} {manifest.version} has no {what} ({detail})")
