"""Running the gateway's event loop: uvloop when it is installed (the ``vmcp[fast]``
extra), asyncio's own loop otherwise."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor when uvloop can be imported, else None (asyncio's)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the fastest loop available."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


# Event loops without Unix signal support (Windows) raise NotImplementedError; a loop that
# is closing raises RuntimeError. Either way the gateway runs on without the handler.
_NO_SIGNALS = (NotImplementedError, RuntimeError)


def on_signals(signals: Iterable[int], callback: Callable[[], object]) -> None:
    """Call ``callback`` on the running loop when any of ``signals`` arrives, where supported."""
    loop = asyncio.get_running_loop()
    for signum in signals:
        with contextlib.suppress(*_NO_SIGNALS):
            loop.add_signal_handler(signum, callback)


def off_signals(signals: Iterable[int]) -> None:
    """Undo :func:`on_signals`."""
    loop = asyncio.get_running_loop()
    for signum in signals:
        with contextlib.suppress(*_NO_SIGNALS):
            loop.remove_signal_handler(signum)
