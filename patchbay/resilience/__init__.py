"""Resilience, per source, applied in one place: timeouts, retries, rate limits, breakers.

``ResilientTransport`` wraps the transport of the ``httpx.AsyncClient`` the Hub injects;
``run_sql`` wraps a blocking SQL operation. Both take one ``ResiliencePolicy`` and an injectable
``Clock``, classify each outcome once with ``classify`` into a ``Decision``, and report every
retry, wait and breaker transition to ``Events``. Connectors and auth never retry on their own.
"""

from ._breaker import CircuitBreaker
from ._classify import Action, Decision, classify, parse_retry_after
from ._clock import Clock, SystemClock
from ._events import Events
from ._limiter import Limiter, RedisTokenBucket, TokenBucket
from ._policy import BreakerPolicy, RateLimitPolicy, ResiliencePolicy, RetryPolicy
from ._sql import run_sql
from ._transport import READ_ONLY, STREAM, ResilientTransport

__all__ = [
    "READ_ONLY",
    "STREAM",
    "Action",
    "BreakerPolicy",
    "CircuitBreaker",
    "Clock",
    "Decision",
    "Events",
    "Limiter",
    "RateLimitPolicy",
    "RedisTokenBucket",
    "ResiliencePolicy",
    "ResilientTransport",
    "RetryPolicy",
    "SystemClock",
    "TokenBucket",
    "classify",
    "parse_retry_after",
    "run_sql",
]
