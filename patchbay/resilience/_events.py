"""Where the resilience layer reports what it did: one log record and one counter per event.

Records go to the ``patchbay.resilience`` logger with ``extra={"event": ..., "source": ...}``;
counters are keyed ``(counter, source)`` and read as a plain snapshot by a metrics endpoint.
Requests are described as method, host and path only: query strings may hold keys.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

import httpx

__all__ = ["COUNTERS", "Events", "describe"]

#: event name -> counter name
COUNTERS = {
    "retry": "retries",
    "give_up": "give_ups",
    "rate_limit_wait": "rate_limit_waits",
    "breaker_open": "breaker_opened",
    "breaker_half_open": "breaker_half_opened",
    "breaker_closed": "breaker_closed",
}


def describe(request: httpx.Request) -> str:
    """``GET api.example.com/v1/orders``: never the query string, never credentials."""
    return f"{request.method} {request.url.host}{request.url.path}"


class Events:
    """A small sink; thread-safe, so ``run_sql`` and several event loops may share one."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("patchbay.resilience")
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def emit(
        self, event: str, source: str, message: str, *, level: int = logging.INFO, **fields: Any
    ) -> None:
        self.count(COUNTERS.get(event, event), source)
        self.logger.log(level, message, extra={"event": event, "source": source, **fields})

    def count(self, counter: str, source: str, n: int = 1) -> None:
        """A counter without a log record, for things too frequent to log (fast fails)."""
        with self._lock:
            self._counts[(counter, source)] += n

    @property
    def counters(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)
