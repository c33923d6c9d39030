"""Fewer cyclic-GC passes while queries stream records.

Records are acyclic, but every batch creates tens of thousands of container objects that stay
alive until the caller has consumed them; with CPython's default thresholds the collector walks
them again and again (about a fifth of a million-row read, see ../shared/notes/performance.md).
While at least one query runs in the process, the young-generation threshold is raised; the
previous thresholds come back when the last query ends. Reference counting still frees every
record the moment it is dropped: only the search for reference cycles runs less often.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["relaxed_gc"]

_THRESHOLDS = (100_000, 50, 100)
_lock = threading.Lock()
_active = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def relaxed_gc() -> Iterator[None]:
    global _active, _saved
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(*_THRESHOLDS)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
