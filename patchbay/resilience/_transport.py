"""The one place HTTP calls are retried, rate limited and circuit-broken.

``ResilientTransport`` wraps the transport an ``httpx.AsyncClient`` sends through. Per try::

    limiter.acquire() -> breaker.before() -> inner transport (whole body read, within timeout)
    -> classify() -> return, or wait (Retry-After or full-jitter backoff) and try again

It stops after ``attempts`` tries, or when the next wait would overrun ``budget`` seconds of
waiting; then a transport failure raises ``SourceUnavailable`` and an HTTP failure returns its
last response, for the connector to classify. A ``Retry-After`` beyond ``retry_after_cap`` fails
at once. A successful response saying the quota is spent (``X-RateLimit-Remaining: 0`` or
``RateLimit-Remaining: 0``, HubSpot's ``X-HubSpot-RateLimit-Remaining``) with a reset time holds
the source's next requests until then (at most ``retry_after_cap``), rather than running into
429s. Writes (POST, PUT, PATCH, DELETE) are retried only with an ``Idempotency-Key`` header,
or when the connector marks a POST that only reads (a search, a JSON-RPC read) with
``extensions={READ_ONLY: True}``.

The body of every response is read inside the try, so a connection dropped mid-body is retried
like any other transient failure and the per-try timeout covers it. A request that must stream
an unbounded body sets ``extensions={STREAM: True}``: then only the headers are inside the try.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import tenacity

from patchbay.core.connector import READ_ONLY
from patchbay.core.errors import SourceUnavailable

from ._breaker import CircuitBreaker
from ._classify import Action, classify
from ._clock import Clock, SystemClock
from ._events import Events, describe
from ._limiter import Limiter, TokenBucket
from ._policy import ResiliencePolicy

__all__ = ["READ_ONLY", "STREAM", "WRITE_METHODS", "ResilientTransport", "backoff"]

STREAM = "patchbay.stream"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def backoff(attempt: int, *, first: float, maximum: float) -> float:
    """Full-jitter exponential backoff before retry number ``attempt`` (1-based), via tenacity."""
    state = tenacity.RetryCallState(tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    return float(tenacity.wait_random_exponential(multiplier=first, max=maximum)(state))


class ResilientTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        policy: ResiliencePolicy,
        *,
        source: str,
        owner: str | None,
        clock: Clock | None = None,
        limiter: Limiter | None = None,
        breaker: CircuitBreaker | None = None,
        events: Events | None = None,
    ) -> None:
        self.inner = inner
        self.policy = policy
        self.source = source
        self.owner = owner
        self.clock: Clock = clock or SystemClock()
        self.events = events or Events()
        if limiter is None and policy.rate_limit is not None:
            limiter = TokenBucket(policy.rate_limit.rate, policy.rate_limit.burst, self.clock)
        self.limiter = limiter
        self.breaker = breaker or CircuitBreaker(
            source, owner, policy.breaker, self.clock, events=self.events
        )
        self._quota_resets_at = 0.0  # monotonic time the server said the spent quota resets

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        retry = self.policy.retry
        retryable = (
            request.method not in WRITE_METHODS
            or "Idempotency-Key" in request.headers
            or bool(request.extensions.get(READ_ONLY))
        )
        if retryable and request.method in WRITE_METHODS:
            await request.aread()  # a replayable body for the next try
        what = describe(request)
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            await self._acquire(what)
            await self.breaker.before()
            response, error = await self._try(request)
            decision = classify(response, error, retry, self.clock.now())
            if error is not None and not decision.transient:
                raise error  # not ours to judge: a bug or a misconfiguration surfaces as is
            await self.breaker.record(not _breaker_failure(response, error))
            if decision.action is Action.OK:
                assert response is not None
                self._note_quota(response)
                return response
            if decision.action is Action.FAIL:
                if decision.wait is not None:  # asked to wait longer than the cap allows
                    await _close(response)
                    raise SourceUnavailable(
                        self.source, f"{what}: {decision.reason}", owner=self.owner
                    )
                assert response is not None
                return response
            if not retryable:
                return self._give_up(
                    what,
                    response,
                    error,
                    f"{decision.reason}; not retried: "
                    f"{request.method} without an Idempotency-Key header",
                    attempt,
                    waited,
                )
            if attempt >= retry.attempts:
                return self._give_up(
                    what,
                    response,
                    error,
                    f"{decision.reason}; gave up after {attempt} attempts",
                    attempt,
                    waited,
                )
            remaining = retry.budget - waited
            if decision.wait is not None:
                wait = decision.wait
            else:
                wait = min(
                    backoff(attempt, first=retry.backoff, maximum=retry.max_backoff), remaining
                )
            if wait > remaining or (waited > 0 and remaining <= 0):
                return self._give_up(
                    what,
                    response,
                    error,
                    f"{decision.reason}; retry budget of "
                    f"{retry.budget:g} s waiting exhausted after {attempt} attempts",
                    attempt,
                    waited,
                )
            await _close(response)
            self.events.emit(
                "retry",
                self.source,
                f"{self.source}: {what} failed ({decision.reason}); retry {attempt} "
                f"in {wait:.3f} s",
                owner=self.owner,
                request=what,
                attempt=attempt,
                wait=wait,
                reason=decision.reason,
                action=decision.action.value,
            )
            await self.clock.sleep(wait)
            waited += wait

    async def aclose(self) -> None:
        await self.inner.aclose()

    def _note_quota(self, response: httpx.Response) -> None:
        reset = quota_reset(response.headers, self.clock.now().timestamp())
        if reset is not None:
            until = self.clock.monotonic() + min(reset, self.policy.retry.retry_after_cap)
            self._quota_resets_at = max(self._quota_resets_at, until)

    async def _acquire(self, what: str) -> None:
        hold = self._quota_resets_at - self.clock.monotonic()
        if hold > 0:
            self.events.emit(
                "rate_limit_wait",
                self.source,
                f"{self.source}: {what} waits {hold:.3f} s: the API said its quota is spent",
                owner=self.owner,
                request=what,
                wait=hold,
            )
            await self.clock.sleep(hold)
        if self.limiter is None:
            return
        waited = await self.limiter.acquire()
        if waited:
            self.events.emit(
                "rate_limit_wait",
                self.source,
                f"{self.source}: {what} waited {waited:.3f} s for the rate limit",
                owner=self.owner,
                request=what,
                wait=waited,
            )

    async def _try(self, request: httpx.Request) -> tuple[httpx.Response | None, Exception | None]:
        """One try, bounded by the policy's timeout: the response with its body, or the error."""
        response: httpx.Response | None = None
        try:
            async with asyncio.timeout(self.policy.timeout):
                response = await self.inner.handle_async_request(request)
                if not request.extensions.get(STREAM):
                    response = await _buffered(response)
        except TimeoutError:
            await _close(response)
            return None, httpx.ReadTimeout(
                f"no complete response within {self.policy.timeout:g} s", request=request
            )
        except Exception as exc:
            await _close(response)
            return None, exc
        return response, None

    def _give_up(
        self,
        what: str,
        response: httpx.Response | None,
        error: Exception | None,
        reason: str,
        attempt: int,
        waited: float,
    ) -> httpx.Response:
        self.events.emit(
            "give_up",
            self.source,
            f"{self.source}: {what}: {reason}",
            level=logging.WARNING,
            owner=self.owner,
            request=what,
            attempt=attempt,
            waited=waited,
            reason=reason,
        )
        if error is not None or response is None:
            raise SourceUnavailable(self.source, f"{what}: {reason}", owner=self.owner) from error
        return response


_REMAINING = ("x-ratelimit-remaining", "ratelimit-remaining", "x-hubspot-ratelimit-remaining")
_RESET = ("x-ratelimit-reset", "ratelimit-reset", "x-hubspot-ratelimit-interval-milliseconds")


def quota_reset(headers: httpx.Headers, now: float) -> float | None:
    """Seconds until a spent quota resets, from rate-limit headers; None while quota is left.

    A reset value above 10^9 is a Unix time (GitHub, Twitter), smaller ones are seconds (the
    IETF ``RateLimit-Reset``); HubSpot gives its interval in milliseconds.
    """
    remaining = next((headers[n] for n in _REMAINING if n in headers), None)
    if remaining is None or remaining.strip() != "0":
        return None
    for name in _RESET:
        if name in headers:
            try:
                value = float(headers[name].split(",")[0])
            except ValueError:
                return None
            if name.endswith("milliseconds"):
                value /= 1000
            elif value > 1e9:
                value -= now
            return max(0.0, value)
    return None


def _breaker_failure(response: httpx.Response | None, error: Exception | None) -> bool:
    """Transient failures count against the breaker; a 4xx other than 429 shows the source up."""
    if error is not None:
        return True
    assert response is not None
    return response.status_code == 429 or response.status_code >= 500


async def _buffered(response: httpx.Response) -> httpx.Response:
    """The same response with its raw (still encoded) body read, so the client can decode it."""
    try:
        raw = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
    finally:
        await _close(response)
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=httpx.ByteStream(raw),
        extensions=response.extensions,
    )


async def _close(response: httpx.Response | None) -> None:
    if response is not None:
        await response.aclose()
