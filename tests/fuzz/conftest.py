"""The fuzzer's seed is printed for every test, so a failure shows how to replay it."""

from __future__ import annotations

import pytest
from fuzz_messages import MESSAGES, SEED


@pytest.fixture(autouse=True)
def _print_seed() -> None:
    print(f"protocol fuzzer: VMCP_FUZZ_SEED={SEED} VMCP_FUZZ_MESSAGES={MESSAGES}")
