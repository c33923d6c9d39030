"""Token buckets: ``burst`` requests at once, then ``rate`` per second.

Both buckets reserve: ``acquire`` takes a token even when the bucket is empty (the count goes
negative) and sleeps until that token would have arrived. Callers are served in arrival order and
nobody polls. ``acquire`` returns the seconds it waited, so the transport can report the wait.

``RedisTokenBucket`` keeps the bucket in one Redis hash updated by a Lua script, with time from
Redis ``TIME``: every process sharing the key sees one bucket and one clock.
"""

from __future__ import annotations

from typing import Protocol

import redis.asyncio as aioredis

from ._clock import Clock

__all__ = ["Limiter", "RedisTokenBucket", "TokenBucket"]


class Limiter(Protocol):
    async def acquire(self) -> float | None: ...


def _check(rate: float, burst: int) -> None:
    if not rate > 0:
        raise ValueError(f"rate must be > 0 requests/s, got {rate!r}")
    if burst < 1:
        raise ValueError(f"burst must be >= 1, got {burst!r}")


class TokenBucket:
    """In-process bucket. No lock: the update has no ``await`` inside, so it is atomic per loop."""

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        _check(rate, burst)
        self.rate = float(rate)
        self.burst = burst
        self.clock = clock
        self._tokens = float(burst)
        self._last = clock.monotonic()

    async def acquire(self) -> float:
        now = self.clock.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        wait = -self._tokens / self.rate
        try:
            await self.clock.sleep(wait)
        except BaseException:
            self._tokens += 1.0  # cancelled: give the reserved token back
            raise
        return wait


# KEYS[1] bucket hash; ARGV rate, burst. Returns the wait in seconds as a string (Redis would
# truncate a Lua number to an integer). Time comes from the server so processes agree on it.
_ACQUIRE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or burst)
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or now)
tokens = math.min(burst, tokens + math.max(0, now - last) * rate) - 1
redis.call('HSET', KEYS[1], 'tokens', string.format('%.9f', tokens),
           'last', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
if tokens >= 0 then return '0' end
return string.format('%.9f', -tokens / rate)
"""


class RedisTokenBucket:
    """One bucket shared by every process that uses the same Redis ``key``."""

    def __init__(
        self, redis: aioredis.Redis, key: str, rate: float, burst: int, clock: Clock
    ) -> None:
        _check(rate, burst)
        self.redis = redis
        self.key = key
        self.rate = float(rate)
        self.burst = burst
        self.clock = clock
        self._script = redis.register_script(_ACQUIRE)

    async def acquire(self) -> float:
        raw = await self._script(keys=[self.key], args=[repr(self.rate), self.burst])
        wait = float(raw.decode() if isinstance(raw, bytes) else raw)
        if wait > 0:
            # A cancelled wait keeps its reservation: handing it back across processes would
            # need a second round trip, and erring on the slow side keeps the limit honest.
            await self.clock.sleep(wait)
        return wait
