"""SIGTERM/SIGINT for both daemons: each one reaches the daemon's handler, which asks for a clean
stop the first time and forces one after that; the handlers that were there before come back
afterwards (``capture_signals`` in uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def capture_signals(handler: Callable[[signal.Signals], None], *, enabled: bool = True) -> Iterator[None]:
    """While inside, the running event loop calls ``handler(sig)`` on each SIGTERM and SIGINT; on
    leaving, the previous handlers are restored. ``enabled=False`` leaves signals alone (tests,
    or a daemon run inside another program)."""
    previous: dict[signal.Signals, Any] = {}
    loop = asyncio.get_running_loop()
    try:
        for sig in STOP_SIGNALS if enabled else ():
            previous[sig] = signal.getsignal(sig)
            loop.add_signal_handler(sig, handler, sig)
        yield
    finally:
        for sig, old in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, old)


__all__ = ["STOP_SIGNALS", "capture_signals"]
