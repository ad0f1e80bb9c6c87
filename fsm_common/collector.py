"""Python's cyclic garbage collector paused while a bulk step builds many small objects that hold
no cycles: a period's 40,000 billed meters set off a full collection every few thousand objects,
each walking every object the process holds (in the web server: all of it), for nothing to free."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection inside; on again after (unless something else had turned it off).
    Reference counting still frees what the step drops, so memory stays what the step keeps."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


__all__ = ["collector_paused"]
