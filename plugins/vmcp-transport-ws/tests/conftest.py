"""Fixtures of the WebSocket transport tests; the helpers live in ``ws_harness``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ws_harness import (
    ALLOWED_ORIGIN,
    MAX_MESSAGE_BYTES,
    GatewayProcess,
    fixture_mount,
    run_gateway,
    write_config,
)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio, for the whole module, so one gateway process can serve a module's tests."""
    return "asyncio"


@pytest.fixture(scope="module")
async def ws_gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayProcess]:
    """One ``vmcp start -t ws`` on a free port with the fixture server mounted as ``fx``.

    Its front accepts messages up to ``MAX_MESSAGE_BYTES`` and the extra origin
    ``ALLOWED_ORIGIN``. Its stderr is printed at teardown, so a failing test shows it.
    """
    folder: Path = tmp_path_factory.mktemp("ws-gateway")
    config = write_config(folder / "vmcp.toml", {
        "transports.ws": {"port": 0, "max_message_bytes": MAX_MESSAGE_BYTES,
                          "allowed_origins": [ALLOWED_ORIGIN]},
        "servers.fx": fixture_mount(),
    })
    async with run_gateway(config, "ws", log=folder / "gateway.log") as gateway:
        await gateway.url()
        yield gateway
    print("--- gateway stderr ---\n" + "".join(gateway.lines))
