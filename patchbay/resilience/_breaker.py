"""A circuit breaker per source: fail fast while the source is down, probe once to see it back.

::

    closed ──(failures consecutive transient failures)──▶ open
    open ──(cooldown elapsed; the next caller becomes the probe)──▶ half_open
    half_open ──probe ok──▶ closed          half_open ──probe failed──▶ open

While open, ``before()`` raises ``SourceUnavailable`` saying when the breaker will try again.
While half-open exactly one probe is in flight; every other caller fails fast. A probe that
never reports (its caller was cancelled, its process died) is replaced after another cool-down.

With a Redis client the state lives in one hash (``state``, ``opened_at``, ``failures``,
``probe_at``) changed only by Lua scripts, so every process sees one breaker; times are then
wall-clock seconds from the injected clock, because monotonic clocks differ between processes.
``state`` is the state this process last saw.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Literal, cast

import redis.asyncio as aioredis

from patchbay.core.errors import SourceUnavailable

from ._clock import Clock
from ._events import Events
from ._policy import BreakerPolicy

__all__ = ["CircuitBreaker", "State"]

State = Literal["closed", "open", "half_open"]

# KEYS[1] hash; ARGV now, cooldown. Returns {verdict, seconds, previous state}.
_BEFORE = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local now = tonumber(ARGV[1])
local cooldown = tonumber(ARGV[2])
if state == 'closed' then return {'allow', '0', state} end
if state == 'open' then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
  if now >= opened + cooldown then
    redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_at', ARGV[1])
    return {'probe', '0', state}
  end
  return {'open', string.format('%.6f', opened + cooldown - now), state}
end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probe_at') or '0')
if now >= probe + cooldown then
  redis.call('HSET', KEYS[1], 'probe_at', ARGV[1])
  return {'probe', '0', state}
end
return {'half_open', string.format('%.6f', probe + cooldown - now), state}
"""

# KEYS[1] hash; ARGV ok (1/0), now, failures threshold. Returns {previous state, new state}.
_RECORD = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if ARGV[1] == '1' then
  if state == 'half_open' then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0)
    return {state, 'closed'}
  end
  if state == 'closed' then redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0) end
  return {state, state}
end
if state == 'half_open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', ARGV[2])
  return {state, 'open'}
end
if state == 'closed' then
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if failures >= tonumber(ARGV[3]) then
    redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', ARGV[2])
    return {state, 'open'}
  end
end
return {state, state}
"""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class CircuitBreaker:
    def __init__(
        self,
        source: str,
        owner: str | None,
        policy: BreakerPolicy,
        clock: Clock,
        redis: aioredis.Redis | None = None,
        key: str | None = None,
        *,
        events: Events | None = None,
    ) -> None:
        self.source = source
        self.owner = owner
        self.policy = policy
        self.clock = clock
        self.events = events
        self._redis = redis
        self.key = key or f"patchbay:breaker:{source}"
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probe_at = 0.0
        if redis is not None:
            self._before_script = redis.register_script(_BEFORE)
            self._record_script = redis.register_script(_RECORD)

    @property
    def state(self) -> State:
        return self._state

    async def before(self) -> None:
        """Return when a call may go to the source; raise ``SourceUnavailable`` otherwise."""
        if self._redis is None:
            verdict, wait = self._before_local()
        else:
            raw = await self._before_script(
                keys=[self.key], args=[repr(self._time()), repr(self.policy.cooldown)]
            )
            verdict, seconds, previous = (_text(part) for part in raw)
            self._state = cast(State, previous)
            if verdict == "probe":
                self._transition(self._state, "half_open")
            elif verdict != "allow":
                self._state = cast(State, verdict)
            wait = float(seconds)
        if verdict in ("allow", "probe"):
            return
        if self.events is not None:
            self.events.count("breaker_rejections", self.source)
        at = (self.clock.now() + timedelta(seconds=float(wait))).strftime("%H:%M:%S UTC")
        why = (
            f"circuit breaker open after {self.policy.failures} consecutive transient failures"
            if verdict == "open"
            else "circuit breaker half-open: one probe request is checking the source"
        )
        raise SourceUnavailable(
            self.source, f"{why}; will try again in {float(wait):.1f} s (at {at})", owner=self.owner
        )

    async def record(self, ok: bool) -> None:
        """Report how a call went: ``ok=False`` only for transient failures."""
        if self._redis is None:
            previous, new = self._record_local(ok)
        else:
            raw = await self._record_script(
                keys=[self.key], args=["1" if ok else "0", repr(self._time()), self.policy.failures]
            )
            previous, new = (cast(State, _text(part)) for part in raw)
        self._state = previous
        self._transition(previous, new)

    def _time(self) -> float:
        return self.clock.monotonic() if self._redis is None else self.clock.now().timestamp()

    def _before_local(self) -> tuple[str, float]:
        now = self._time()
        cooldown = self.policy.cooldown
        if self._state == "closed":
            return "allow", 0.0
        if self._state == "open":
            if now >= self._opened_at + cooldown:
                self._probe_at = now
                self._transition("open", "half_open")
                return "probe", 0.0
            return "open", self._opened_at + cooldown - now
        if now >= self._probe_at + cooldown:  # the probe never reported: let another through
            self._probe_at = now
            return "probe", 0.0
        return "half_open", self._probe_at + cooldown - now

    def _record_local(self, ok: bool) -> tuple[State, State]:
        state = self._state
        if ok:
            if state == "half_open":
                self._failures = 0
                return state, "closed"
            if state == "closed":
                self._failures = 0
            return state, state  # a late success while open proves nothing about now
        if state == "half_open":
            self._opened_at = self._time()
            return state, "open"
        if state == "closed":
            self._failures += 1
            if self._failures >= self.policy.failures:
                self._opened_at = self._time()
                return state, "open"
        return state, state

    def _transition(self, previous: State, new: State) -> None:
        self._state = new
        if previous == new:
            return
        if new == "closed":
            self._failures = 0
        if self.events is not None:
            level = logging.WARNING if new == "open" else logging.INFO
            self.events.emit(
                f"breaker_{new}",
                self.source,
                f"{self.source}: circuit breaker {previous} -> {new}",
                level=level,
                owner=self.owner,
                previous=previous,
                state=new,
            )
