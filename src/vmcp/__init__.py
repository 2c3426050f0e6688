"""vmcp: a gateway that shows many MCP servers to any MCP client as one server.

Plugin authors import :data:`hookimpl` from here to mark hook implementations.
"""

from importlib.metadata import PackageNotFoundError, version

from vmcp.hookspecs import hookimpl

try:
    __version__ = version("vmcp")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__", "hookimpl"]
