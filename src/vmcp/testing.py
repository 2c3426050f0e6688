"""Helpers for the tests of vmcp and of its plugins: real local servers that a test starts
and ends (a registry, a package index, a folder of files), on 127.0.0.1 and a free port."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def local_http_server(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` in a thread; yield the base URL (``http://127.0.0.1:<port>``).

    The server is shut down, closed and its thread joined when the block ends.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class QuietFileHandler(SimpleHTTPRequestHandler):
    """Serves the files of a folder without logging every request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        """Say nothing (a test's output stays readable)."""


def serve_folder(root: Path) -> contextlib.AbstractContextManager[str]:
    """Serve the files under ``root`` (see :func:`local_http_server`); yields the base URL."""
    return local_http_server(partial(QuietFileHandler, directory=str(root)))
