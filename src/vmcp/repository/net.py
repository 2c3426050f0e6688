"""Small HTTP helpers for sources and installers: GET with a timeout and a size limit.

They run the standard library's client in a worker thread, so the kernel needs no HTTP
dependency; every failure becomes a :class:`FetchError` whose message names the URL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import anyio

from vmcp import __version__
from vmcp.repository.base import SourceError

USER_AGENT = f"vmcp/{__version__}"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_BYTES = 32 * 1024 * 1024


class FetchError(SourceError):
    """A URL could not be fetched; the message says which and why."""


def _get(url: str, headers: dict[str, str], timeout: float, max_bytes: int) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise FetchError(f"{url}: only http and https URLs are supported")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise FetchError(f"{url}: {exc.reason}") from exc
    except (TimeoutError, OSError) as exc:
        raise FetchError(f"{url}: {exc}") from exc
    if len(body) > max_bytes:
        raise FetchError(f"{url}: larger than {max_bytes} bytes")
    return body


async def get_bytes(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """GET ``url`` and return the body.

    :raises FetchError: on any network or HTTP error, or a body over ``max_bytes``.
    """
    return await anyio.to_thread.run_sync(_get, url, headers or {}, timeout, max_bytes)


async def get_json(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Any:
    """GET ``url`` and decode its JSON body.

    :raises FetchError: as :func:`get_bytes`, or when the body is not JSON.
    """
    wanted = {"Accept": "application/json", **(headers or {})}
    body = await get_bytes(url, headers=wanted, timeout=timeout, max_bytes=max_bytes)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FetchError(f"{url}: not valid JSON: {exc}") from exc
