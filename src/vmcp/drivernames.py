"""Driver names: which are installed for each kind, and what installs a missing one.

Reading entry-point metadata imports no driver, so the configuration can check every name
it is given (``transport``, ``balancer``, ``[cache] backend``, ``[auth] driver``,
``[repositories.*] type``) when it is read, long before a driver is loaded.
"""

from __future__ import annotations

from pathlib import Path

from vmcp.entrypoints import vmcp_entry_points

DRIVER_GROUPS: dict[str, str] = {
    "transports": "vmcp.transports",
    "caches": "vmcp.caches",
    "balancers": "vmcp.balancers",
    "repositories": "vmcp.repositories",
    "auth": "vmcp.auth",
    "cluster": "vmcp.cluster",
}

# Drivers that are not built in, and the package that provides each.
KNOWN_PROVIDERS: dict[tuple[str, str], str] = {
    ("transports", "http"): "vmcp-transport-http",
    ("transports", "sse"): "vmcp-transport-http",
    ("transports", "ws"): "vmcp-transport-ws",
    ("caches", "disk"): "vmcp-cache-disk",
    ("caches", "redis"): "vmcp-cache-redis",
    ("balancers", "least_request"): "vmcp-lb-adaptive",
    ("balancers", "peak_ewma"): "vmcp-lb-adaptive",
    ("balancers", "ring_hash"): "vmcp-lb-adaptive",
    ("repositories", "git"): "vmcp-repo-git",
    ("repositories", "http"): "vmcp-repo-http",
    ("repositories", "pypi"): "vmcp-repo-pypi",
    ("auth", "jwt"): "vmcp-auth-jwt",
    ("cluster", "redis"): "vmcp-cluster-redis",
}


def installed_names(kind: str) -> list[str]:
    """The driver names installed for ``kind`` (``transports``, ``caches`` ...), sorted."""
    return sorted({ep.name for ep in vmcp_entry_points().select(group=DRIVER_GROUPS[kind])})


def installed_drivers() -> dict[str, list[str]]:
    """The installed driver names of every kind."""
    every = vmcp_entry_points()
    return {kind: sorted({ep.name for ep in every.select(group=group)})
            for kind, group in DRIVER_GROUPS.items()}


def _checkout_plugins() -> Path | None:
    """The ``plugins/`` folder of the checkout vmcp runs from, when it runs from one."""
    folder = Path(__file__).resolve().parents[2] / "plugins"
    return folder if folder.is_dir() else None


def install_hint(kind: str, name: str) -> str | None:
    """How to install the package that provides driver ``name``, or None when none is known.

    The plugins are not published on PyPI: they are folders of the vmcp repository, so the
    hint names that folder (its absolute path when vmcp runs from a checkout).
    """
    package = KNOWN_PROVIDERS.get((kind, name))
    if package is None:
        return None
    plugins = _checkout_plugins()
    where = (str(plugins / package) if plugins is not None and (plugins / package).is_dir()
             else f"plugins/{package}")
    return (f"{name!r} is provided by the package {package}, in the vmcp repository "
            f"(not on PyPI): uv pip install {where} into vmcp's environment, "
            f"or uv tool install --with {where} ... (see the README's install section)")
