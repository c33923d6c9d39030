"""ResilientTransport against a real fault-injecting server on 127.0.0.1.

Assertions are about counts and logical bounds (requests the server saw, simulated seconds slept),
never about speed.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from resilience_faults import FakeClock, FaultServer, Hit, Reply

from patchbay.core.connector import READ_ONLY
from patchbay.core.errors import SourceUnavailable
from patchbay.resilience import (
    BreakerPolicy,
    CircuitBreaker,
    ResiliencePolicy,
    ResilientTransport,
    RetryPolicy,
)


def client_for(
    server_url: str,
    policy: ResiliencePolicy,
    clock: FakeClock | None = None,
    inner: httpx.AsyncBaseTransport | None = None,
    **kwargs: object,
) -> httpx.AsyncClient:
    transport = ResilientTransport(
        inner or httpx.AsyncHTTPTransport(),
        policy,
        source="erp",
        owner="finance-it",
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )
    return httpx.AsyncClient(transport=transport, base_url=server_url, timeout=10)


def fast(**retry: object) -> ResiliencePolicy:
    """Short backoffs; the fake clock makes them free anyway."""
    base: dict[str, object] = {"backoff": 0.01, "max_backoff": 0.05}
    return ResiliencePolicy(retry=RetryPolicy(**(base | retry)))  # type: ignore[arg-type]


def replies(*sequence: Reply) -> Iterator[Reply]:
    """The given replies in order, then 200s."""
    return itertools.chain(sequence, itertools.repeat(Reply()))


async def test_thousand_reads_through_503s_and_429s(server: FaultServer) -> None:
    rng = random.Random(20250101)

    def flaky(hit: Hit) -> Reply:
        roll = rng.random()
        if roll < 0.30:
            return Reply(503)
        if roll < 0.40:
            return Reply(429, headers={"Retry-After": "1"}, retry_after=1.0)
        return Reply(200, body=b'{"ok": true}')

    server.behaviour = flaky
    policy = ResiliencePolicy(
        retry=RetryPolicy(attempts=20, backoff=0.05, max_backoff=0.5),
        breaker=BreakerPolicy(failures=1_000),  # a 40 % failure rate must not open it here
    )
    # 50 requests in flight over 25 pooled connections: httpcore's pool bookkeeping grows with
    # the connection count and dominates CPU time on small CI machines.
    inner = httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=25, max_keepalive_connections=25)
    )
    gate = asyncio.Semaphore(50)
    async with client_for(server.url, policy, inner=inner) as client:

        async def read(n: int) -> int:
            async with gate:
                response = await client.get(f"/items/{n}", headers={"X-Client-Request-Id": str(n)})
                assert response.json() == {"ok": True}
                return response.status_code

        statuses = await asyncio.gather(*(read(n) for n in range(1000)))

    assert statuses == [200] * 1000
    by_client: dict[str | None, list[Hit]] = {}
    for hit in sorted(server.hits, key=lambda hit: hit.arrival):
        by_client.setdefault(hit.client_id, []).append(hit)
    assert len(by_client) == 1000
    rate_limited = 0
    for hits in by_client.values():
        assert hits[-1].status == 200
        for earlier, later in itertools.pairwise(hits):
            if earlier.retry_after is not None:
                rate_limited += 1
                assert later.arrival - earlier.arrival >= earlier.retry_after
    failures = sum(hit.status != 200 for hit in server.hits)
    assert failures > 300  # the faults really happened: ~40 % of ~1,650 tries
    assert rate_limited > 50


async def test_retry_after_http_date_is_honoured(server: FaultServer, clock: FakeClock) -> None:
    date = format_datetime(clock.now().replace(microsecond=0) + _seconds(7), usegmt=True)
    sequence = replies(Reply(429, headers={"Retry-After": date}))
    server.behaviour = lambda hit: next(sequence)
    async with client_for(server.url, fast(), clock) as client:
        response = await client.get("/orders")
    assert response.status_code == 200
    assert server.count() == 2
    assert clock.sleeps == [7.0]


async def test_503_retry_after_seconds_is_honoured(server: FaultServer, clock: FakeClock) -> None:
    sequence = replies(Reply(503, headers={"Retry-After": "3"}))
    server.behaviour = lambda hit: next(sequence)
    async with client_for(server.url, fast(), clock) as client:
        response = await client.get("/orders")
    assert response.status_code == 200
    assert clock.sleeps == [3.0]


async def test_retry_after_over_the_cap_fails_at_once(
    server: FaultServer, clock: FakeClock
) -> None:
    server.behaviour = lambda hit: Reply(429, headers={"Retry-After": "600"})
    async with client_for(server.url, fast(retry_after_cap=120), clock) as client:
        with pytest.raises(SourceUnavailable) as caught:
            await client.get("/orders")
    message = str(caught.value)
    assert "Retry-After of 600 s" in message
    assert "cap of 120 s" in message
    assert server.count() == 1
    assert clock.sleeps == []


async def test_connection_refused_exhausts_attempts(clock: FakeClock) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    try:
        async with client_for(url, fast(attempts=3), clock) as client:
            with pytest.raises(SourceUnavailable) as caught:
                await client.get("/orders")
    finally:
        closed.close()
    error = caught.value
    assert (error.source, error.owner) == ("erp", "finance-it")
    assert "'erp' (owner: finance-it)" in str(error)
    assert "ConnectError" in str(error)
    assert "after 3 attempts" in str(error)
    assert len(clock.sleeps) == 2
    assert isinstance(error.__cause__, httpx.ConnectError)


async def test_dropped_connections_are_retried_then_give_up(
    server: FaultServer, clock: FakeClock
) -> None:
    sequence = replies(Reply(drop=True), Reply(drop=True))
    server.behaviour = lambda hit: next(sequence)
    async with client_for(server.url, fast(attempts=3), clock) as client:
        response = await client.get("/orders")
        assert response.json() == {"ok": True}
        assert server.count() == 3

        server.behaviour = lambda hit: Reply(drop=True)
        with pytest.raises(SourceUnavailable, match="RemoteProtocolError") as caught:
            await client.get("/orders")
    assert caught.value.owner == "finance-it"
    assert server.count() == 6


async def test_budget_exhausted_returns_last_response(
    server: FaultServer, clock: FakeClock
) -> None:
    server.behaviour = lambda hit: Reply(503, headers={"Retry-After": "10"})
    async with client_for(server.url, fast(attempts=10, budget=25), clock) as client:
        response = await client.get("/orders")
    assert response.status_code == 503  # the connector classifies the final status
    assert server.count() == 3  # 10 s + 10 s waited; a third wait would overrun 25 s
    assert clock.sleeps == [10.0, 10.0]


async def test_attempts_exhausted_returns_last_response(
    server: FaultServer, clock: FakeClock
) -> None:
    server.behaviour = lambda hit: Reply(502, body=b"bad gateway")
    async with client_for(server.url, fast(attempts=4), clock) as client:
        response = await client.get("/orders")
    assert response.status_code == 502
    assert response.text == "bad gateway"
    assert server.count() == 4
    assert len(clock.sleeps) == 3
    assert all(0 <= wait <= 0.05 for wait in clock.sleeps)


async def test_500_and_4xx_are_not_retried_unless_asked(
    server: FaultServer, clock: FakeClock
) -> None:
    server.behaviour = lambda hit: Reply(500)
    async with client_for(server.url, fast(), clock) as client:
        assert (await client.get("/a")).status_code == 500
        assert server.count() == 1
        server.behaviour = lambda hit: Reply(404)
        assert (await client.get("/b")).status_code == 404
        assert server.count() == 2
    async with client_for(server.url, fast(retry_500=True, attempts=2), clock) as client:
        server.behaviour = lambda hit: Reply(500)
        assert (await client.get("/c")).status_code == 500
        assert server.count() == 4


async def test_slow_response_times_out_and_is_retried(
    server: FaultServer, clock: FakeClock
) -> None:
    sequence = replies(Reply(delay=3.0))
    server.behaviour = lambda hit: next(sequence)
    policy = ResiliencePolicy(timeout=0.3, retry=RetryPolicy(backoff=0.01))
    async with client_for(server.url, policy, clock) as client:
        response = await client.get("/slow")
    assert response.status_code == 200
    assert server.count() == 2


async def test_post_is_retried_only_with_an_idempotency_key(
    server: FaultServer, clock: FakeClock
) -> None:
    server.behaviour = lambda hit: Reply(503)
    async with client_for(server.url, fast(), clock) as client:
        response = await client.post("/orders", json={"n": 1})
        assert response.status_code == 503
        assert server.count() == 1

        sequence = replies(Reply(503), Reply(503))
        server.behaviour = lambda hit: next(sequence)
        response = await client.post(
            "/orders", json={"n": 2}, headers={"Idempotency-Key": "order-2"}
        )
    assert response.status_code == 200
    assert [hit.body for hit in server.hits[1:]] == [b'{"n":2}'] * 3
    assert len(clock.sleeps) == 2


@pytest.mark.parametrize(
    ("headers", "hold"),
    [
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "7"}, 7.0),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "3"}, 3.0),
        ({"X-HubSpot-RateLimit-Remaining": "0",
          "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}, 10.0),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "100000"}, 120.0),  # capped
        # a Unix time: the fake clock's wall time is 2025-01-01 plus its monotonic 1000 s
        ({"X-RateLimit-Remaining": "0",
          "X-RateLimit-Reset": str(int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()) + 1005)},
         5.0),
    ],
)
async def test_a_spent_quota_holds_the_next_request_until_it_resets(
    server: FaultServer, clock: FakeClock, headers: dict[str, str], hold: float
) -> None:
    sequence = replies(Reply(200, headers))
    server.behaviour = lambda hit: next(sequence)
    async with client_for(server.url, ResiliencePolicy(), clock) as client:
        assert (await client.get("/orders")).status_code == 200
        assert clock.sleeps == []
        assert (await client.get("/orders")).status_code == 200
        assert (await client.get("/orders")).status_code == 200
    assert clock.sleeps == [pytest.approx(hold)]  # once: the second reply left quota
    assert server.count() == 3


async def test_quota_left_or_unreadable_reset_holds_nothing(
    server: FaultServer, clock: FakeClock
) -> None:
    sequence = replies(Reply(200, {"X-RateLimit-Remaining": "4", "X-RateLimit-Reset": "9"}),
                       Reply(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "soon"}))
    server.behaviour = lambda hit: next(sequence)
    async with client_for(server.url, ResiliencePolicy(), clock) as client:
        for _ in range(3):
            assert (await client.get("/orders")).status_code == 200
    assert clock.sleeps == []


async def test_a_post_marked_read_only_is_retried(server: FaultServer, clock: FakeClock) -> None:
    sequence = replies(Reply(503), Reply(429, {"Retry-After": "1"}))
    server.behaviour = lambda hit: next(sequence)
    async with client_for(server.url, ResiliencePolicy(), clock) as client:
        response = await client.post("/search", json={"q": 1}, extensions={READ_ONLY: True})
    assert response.status_code == 200
    assert [hit.body for hit in server.hits] == [b'{"q":1}'] * 3


async def test_breaker_opens_fails_fast_and_probes_once(
    server: FaultServer, clock: FakeClock
) -> None:
    policy = ResiliencePolicy(
        retry=RetryPolicy(attempts=1), breaker=BreakerPolicy(failures=3, cooldown=30)
    )
    breaker = CircuitBreaker("erp", "finance-it", policy.breaker, clock)
    server.behaviour = lambda hit: Reply(503)
    async with client_for(server.url, policy, clock, breaker=breaker) as client:
        for _ in range(3):
            assert (await client.get("/orders")).status_code == 503
        assert breaker.state == "open"
        assert server.count() == 3

        for _ in range(5):
            with pytest.raises(SourceUnavailable) as caught:
                await client.get("/orders")
        message = str(caught.value)
        assert "'erp' (owner: finance-it)" in message
        assert "circuit breaker open" in message
        assert "will try again in 30.0 s (at 00:17:10 UTC)" in message
        assert server.count() == 3  # not a single request reached the server

        clock.advance(30)
        server.behaviour = lambda hit: Reply(200, delay=0.3)
        results = await asyncio.gather(
            *(client.get("/orders") for _ in range(5)), return_exceptions=True
        )
        assert server.count() == 4  # exactly one probe went through
        assert sum(isinstance(r, httpx.Response) and r.status_code == 200 for r in results) == 1
        rejected = [r for r in results if isinstance(r, SourceUnavailable)]
        assert len(rejected) == 4
        assert "half-open" in str(rejected[0])
        assert breaker.state == "closed"

        server.behaviour = lambda hit: Reply(503)
        for _ in range(3):
            await client.get("/orders")
        assert breaker.state == "open"
        clock.advance(30)
        assert (await client.get("/orders")).status_code == 503  # the probe fails...
        assert breaker.state == "open"  # ...and the breaker opens again
        assert server.count() == 8
        with pytest.raises(SourceUnavailable):
            await client.get("/orders")
        assert server.count() == 8


async def test_4xx_does_not_count_against_the_breaker(
    server: FaultServer, clock: FakeClock
) -> None:
    policy = ResiliencePolicy(retry=RetryPolicy(attempts=1), breaker=BreakerPolicy(failures=2))
    breaker = CircuitBreaker("erp", None, policy.breaker, clock)
    server.behaviour = lambda hit: Reply(404)
    async with client_for(server.url, policy, clock, breaker=breaker) as client:
        for _ in range(5):
            await client.get("/missing")
    assert breaker.state == "closed"


def _seconds(n: float) -> timedelta:
    return timedelta(seconds=n)
