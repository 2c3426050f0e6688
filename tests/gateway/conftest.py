"""Fixtures for the end-to-end gateway tests; the helpers live in ``gateway_harness``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import ALPHA, BETA, Gateway, backend, write_config


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Factory: ``make_gateway(servers, gateway_settings)`` -> a :class:`Gateway`.

    ``servers=None`` writes no configuration at all (the shipped defaults apply). The gateway's
    stderr is printed at teardown, so a failing test shows it.
    """
    made: list[Gateway] = []

    def factory(
        servers: dict[str, dict[str, Any]] | None, gateway: dict[str, Any] | None = None
    ) -> Gateway:
        index = len(made)
        home = tmp_path / f"home{index}"
        home.mkdir()
        config = None
        if servers is not None:
            config = write_config(tmp_path / f"config{index}" / "vmcp.toml", servers, gateway)
        made.append(Gateway(home=home, config=config, log=tmp_path / f"gateway{index}.log"))
        return made[-1]

    yield factory
    for gateway in made:
        text = gateway.log_text()
        if text:
            print(f"--- gateway stderr ({gateway.log.name}) ---\n{text}")


@pytest.fixture
def two_backends() -> dict[str, dict[str, Any]]:
    """The usual mount table: ``alpha`` then ``beta``."""
    return {"alpha": backend(ALPHA), "beta": backend(BETA)}
