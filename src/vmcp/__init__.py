"""vmcp: a gateway that shows many MCP servers to any MCP client as one server.

Plugin authors import :data:`hookimpl` from here to mark hook implementations.

Both names are looked up when first used: importing the package costs nothing, so that
``vmcp start`` on stdio can answer its first requests before anything heavy is imported
(:mod:`vmcp.faststart`).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself is not imported (see above)
if TYPE_CHECKING:
    from vmcp.hookspecs import hookimpl

    __version__: str

__all__ = ["__version__", "hookimpl"]


def __getattr__(name: str) -> object:
    """``__version__`` and ``hookimpl``, on first use."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("vmcp")
        except PackageNotFoundError:  # running from a source tree that was never installed
            value = "0.0.0"
    elif name == "hookimpl":
        from vmcp.hookspecs import hookimpl as value
    else:
        raise AttributeError(f"module 'vmcp' has no attribute {name!r}")
    globals()[name] = value
    return value
