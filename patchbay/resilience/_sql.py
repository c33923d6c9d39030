"""The same policy around a blocking SQL operation, run in a worker thread.

Only disconnects are retried: ``DisconnectionError`` from the pool, and ``DBAPIError`` (such as
``OperationalError``) that SQLAlchemy marked ``connection_invalidated`` when the driver reported a
dropped connection. Any other database error means the server answered: it is re-raised at once
and counts as a success for the breaker. The engine's own timeouts bound each try; a thread
cannot be cancelled, so ``policy.timeout`` does not apply here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import exc as sa_exc

from patchbay.core.errors import SourceUnavailable

from ._breaker import CircuitBreaker
from ._clock import Clock, SystemClock
from ._events import Events
from ._policy import ResiliencePolicy
from ._transport import backoff

__all__ = ["is_disconnect", "run_sql"]

T = TypeVar("T")


def is_disconnect(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DisconnectionError):
        return True
    return isinstance(error, sa_exc.DBAPIError) and bool(error.connection_invalidated)


async def run_sql(
    fn: Callable[[], T],
    *,
    policy: ResiliencePolicy,
    source: str,
    owner: str | None,
    clock: Clock | None = None,
    breaker: CircuitBreaker | None = None,
    events: Events | None = None,
) -> T:
    clock = clock or SystemClock()
    events = events or Events()
    retry = policy.retry
    waited = 0.0
    attempt = 0
    while True:
        attempt += 1
        if breaker is not None:
            await breaker.before()
        try:
            result = await asyncio.to_thread(fn)
        except sa_exc.SQLAlchemyError as exc:
            if not is_disconnect(exc):
                if breaker is not None:
                    await breaker.record(True)
                raise
            if breaker is not None:
                await breaker.record(False)
            # the class only: str() of a DBAPIError carries the statement and its parameters
            reason = f"{type(exc).__name__} (connection lost)"
            wait = min(
                backoff(attempt, first=retry.backoff, maximum=retry.max_backoff),
                retry.budget - waited,
            )
            if attempt >= retry.attempts or (waited > 0 and waited >= retry.budget):
                why = f"{reason}; gave up after {attempt} attempts"
                events.emit(
                    "give_up",
                    source,
                    f"{source}: SQL: {why}",
                    level=logging.WARNING,
                    owner=owner,
                    attempt=attempt,
                    waited=waited,
                    reason=why,
                )
                raise SourceUnavailable(source, f"SQL: {why}", owner=owner) from exc
            events.emit(
                "retry",
                source,
                f"{source}: SQL failed ({reason}); retry {attempt} in {wait:.3f} s",
                owner=owner,
                attempt=attempt,
                wait=wait,
                reason=reason,
            )
            await clock.sleep(wait)
            waited += wait
            continue
        if breaker is not None:
            await breaker.record(True)
        return result
