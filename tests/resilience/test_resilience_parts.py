"""The parts on their own: classify, token buckets (in-process and shared through Redis), events,
breaker state shared through Redis, and run_sql."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio as aioredis
import sqlalchemy as sa
from resilience_faults import FakeClock, FaultServer, Hit, Reply
from sqlalchemy import exc as sa_exc

from patchbay.core.errors import SourceUnavailable
from patchbay.resilience import (
    Action,
    BreakerPolicy,
    CircuitBreaker,
    Events,
    ResiliencePolicy,
    ResilientTransport,
    RetryPolicy,
    TokenBucket,
    classify,
    run_sql,
)

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = os.environ.get("PATCHBAY_REQUIRE_SERVICES") == "1"
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def unavailable(reason: str) -> None:
    """Skip, or fail when services are required (as tests/conftest.py does)."""
    if REQUIRED:
        pytest.fail(f"{reason} (PATCHBAY_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> str:
    """Redis on 127.0.0.1:6379; ``redis_prefix`` gives each test its own keys."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex(("127.0.0.1", 6379)) != 0:
            unavailable("Redis is not running on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"pbtest:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


# --- classify --------------------------------------------------------------------------------


def _response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


def test_classify_is_plain_data() -> None:
    policy = RetryPolicy()
    assert classify(_response(200), None, policy, NOW).action is Action.OK
    assert classify(_response(503), None, policy, NOW).action is Action.RETRY
    assert classify(_response(504), None, policy, NOW).wait is None
    limited = classify(_response(429, **{"Retry-After": "2"}), None, policy, NOW)
    assert (limited.action, limited.wait) == (Action.RATE_LIMITED, 2.0)
    assert classify(_response(500), None, policy, NOW).action is Action.FAIL
    assert classify(_response(500), None, RetryPolicy(retry_500=True), NOW).action is Action.RETRY
    assert classify(_response(400), None, policy, NOW).action is Action.FAIL
    assert classify(None, httpx.ConnectError("refused"), policy, NOW).action is Action.RETRY
    assert classify(None, httpx.ReadTimeout("slow"), policy, NOW).action is Action.RETRY
    assert classify(None, httpx.UnsupportedProtocol("ftp"), policy, NOW).action is Action.FAIL
    bare = classify(None, ValueError("a bug"), policy, NOW)
    assert bare.action is Action.FAIL
    assert "not a transient failure" in bare.reason


# --- token buckets ---------------------------------------------------------------------------


async def test_token_bucket_takes_exactly_the_expected_simulated_time(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    start = clock.monotonic()
    waits = [await bucket.acquire() for _ in range(25)]
    assert waits[:5] == [0.0] * 5  # the burst
    assert clock.monotonic() - start == pytest.approx(2.0, abs=1e-9)  # 20 more at 10/s
    assert len(clock.sleeps) == 20
    clock.advance(10)  # a long pause refills to the burst, not beyond
    start = clock.monotonic()
    for _ in range(6):
        await bucket.acquire()
    assert clock.monotonic() - start == pytest.approx(0.1, abs=1e-9)


_WORKER = """
import asyncio, json, sys, time

import httpx
import redis.asyncio as aioredis

from patchbay.resilience import ResiliencePolicy, ResilientTransport, RedisTokenBucket, SystemClock

redis_url, key, url, name, start_at, duration, rate, burst = sys.argv[1:]
grants = []  # (asked, wait): the token is this process's at about asked + wait


class Recorded(RedisTokenBucket):
    async def acquire(self) -> float:
        asked = time.time()
        wait = await super().acquire()  # returns after sleeping the wait
        grants.append((asked, wait, time.time()))
        return wait


async def main() -> None:
    r = aioredis.Redis.from_url(redis_url)
    bucket = Recorded(r, key, float(rate), int(burst), SystemClock())
    transport = ResilientTransport(
        httpx.AsyncHTTPTransport(), ResiliencePolicy(), source="shared", owner=None,
        limiter=bucket,
    )
    end = float(start_at) + float(duration)
    async with httpx.AsyncClient(transport=transport) as client:
        while time.time() < float(start_at):
            await asyncio.sleep(0.005)

        async def worker() -> None:
            while time.time() < end:
                response = await client.get(url, headers={"X-Client-Request-Id": name})
                response.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(4)))
    await r.aclose()
    print(json.dumps(grants))


asyncio.run(main())
"""


async def test_redis_bucket_shared_by_two_processes(
    server: FaultServer, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    capacity, rate, duration = 5, 20.0, 2.0
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(_WORKER))
    start_at = time.time() + 2.5  # both interpreters are up and connected by then
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                redis_url,
                f"{redis_prefix}bucket",
                f"{server.url}/limited",
                name,
                repr(start_at),
                repr(duration),
                repr(rate),
                str(capacity),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in ("p1", "p2")
    ]
    grants: list[tuple[float, float, float]] = []
    for proc in procs:
        out, err = await asyncio.to_thread(proc.communicate, timeout=30)
        assert proc.returncode == 0, err.decode()
        grants.extend(tuple(g) for g in json.loads(out))

    assert {hit.client_id for hit in server.hits} == {"p1", "p2"}
    assert len(server.hits) == len(grants)  # every request took a token of the shared bucket
    # The bucket grants a token at (Redis' time of the call) + wait, and Redis' time of the call
    # lies between `asked` and `asked + latency`: with the grant instants taken as
    # `asked + wait`, each is early by at most the largest latency measured in this run, so a
    # window of t holds at most what a window of t + latency of the true instants holds.
    latency = max(done - (asked + wait) for asked, wait, done in grants)
    instants = sorted(asked + wait for asked, wait, _ in grants)
    for window in (0.1, 0.25, 0.5, 1.0, 2.0):
        most = max(
            sum(1 for later in instants[i:] if later - first <= window)
            for i, first in enumerate(instants)
        )
        assert most <= capacity + rate * (window + latency) + 1, (window, most, latency)


async def test_breaker_state_is_shared_through_redis(
    aredis: aioredis.Redis, redis_prefix: str, clock: FakeClock
) -> None:
    policy = BreakerPolicy(failures=2, cooldown=10)
    key = f"{redis_prefix}breaker"
    a = CircuitBreaker("crm", "sales-ops", policy, clock, redis=aredis, key=key)
    b = CircuitBreaker("crm", "sales-ops", policy, clock, redis=aredis, key=key)
    await a.before()
    await a.record(False)
    await b.record(False)  # the second consecutive failure, seen from another worker
    assert b.state == "open"
    with pytest.raises(SourceUnavailable, match=r"owner: sales-ops.*will try again in 10\.0 s"):
        await a.before()
    clock.advance(10)
    await a.before()  # a is the probe...
    assert a.state == "half_open"
    with pytest.raises(SourceUnavailable, match="half-open"):
        await b.before()  # ...so b fails fast
    await a.record(True)
    assert a.state == "closed"
    await b.before()
    fields = await aredis.hgetall(key)
    assert fields[b"state"] == b"closed"
    assert fields[b"failures"] == b"0"


# --- events ----------------------------------------------------------------------------------


def _records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "patchbay.resilience" and getattr(record, "event", None) == event
    ]


async def test_events_log_once_and_count_without_secrets(
    server: FaultServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="patchbay.resilience")
    events = Events()
    policy = ResiliencePolicy(
        retry=RetryPolicy(attempts=2, backoff=0.01),
        breaker=BreakerPolicy(failures=2, cooldown=5),
    )
    breaker = CircuitBreaker("erp", "finance-it", policy.breaker, clock, events=events)
    transport = ResilientTransport(
        httpx.AsyncHTTPTransport(),
        policy,
        source="erp",
        owner="finance-it",
        clock=clock,
        limiter=TokenBucket(rate=1, burst=1, clock=clock),
        breaker=breaker,
        events=events,
    )
    answers = iter([Reply(503), Reply(200), Reply(200), Reply(503), Reply(503), Reply(200)])

    def behaviour(hit: Hit) -> Reply:
        return next(answers)

    server.behaviour = behaviour
    url = f"{server.url}/v1/orders?api_key=SECRET"
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(url)).status_code == 200  # 503, retry, 200
        assert len(_records(caplog, "retry")) == 1
        assert events.counters[("retries", "erp")] == 1
        rate_waits = len(_records(caplog, "rate_limit_wait"))
        assert rate_waits == events.counters[("rate_limit_waits", "erp")] >= 1

        caplog.clear()
        await client.get(url)  # 200 after a one-second rate-limit wait
        assert len(_records(caplog, "rate_limit_wait")) == 1
        assert events.counters[("rate_limit_waits", "erp")] == rate_waits + 1

        await client.get(url)  # 503, 503: two failures open the breaker, then give up
        assert len(_records(caplog, "breaker_open")) == 1
        assert events.counters[("breaker_opened", "erp")] == 1
        assert breaker.state == "open"
        clock.advance(5)
        assert (await client.get(url)).status_code == 200  # the probe closes it
        assert len(_records(caplog, "breaker_half_open")) == 1
        assert len(_records(caplog, "breaker_closed")) == 1
        assert events.counters[("breaker_half_opened", "erp")] == 1
        assert events.counters[("breaker_closed", "erp")] == 1
        opened = _records(caplog, "breaker_open")[0]
        assert (opened.source, opened.owner, opened.state) == ("erp", "finance-it", "open")

        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        try:
            with pytest.raises(SourceUnavailable) as caught:
                await client.get(f"http://127.0.0.1:{port}/x?api_key=SECRET")
        finally:
            closed.close()
    assert "SECRET" not in str(caught.value)
    assert _records(caplog, "retry")[-1].request == "GET 127.0.0.1/x"  # method, host, path
    assert caplog.records
    for record in caplog.records:
        assert "SECRET" not in record.getMessage()
        assert "SECRET" not in repr(vars(record))


# --- run_sql ---------------------------------------------------------------------------------


def _disconnect() -> sa_exc.OperationalError:
    return sa_exc.OperationalError(
        "SELECT 1",
        {},
        sqlite3.OperationalError("server closed the connection unexpectedly"),
        connection_invalidated=True,
    )


async def test_run_sql_retries_a_disconnect_once(tmp_path: Path, clock: FakeClock) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'erp.sqlite'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (n INTEGER)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1), (2), (3)"))
    calls = 0

    def query() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise _disconnect()
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT sum(n) FROM t")).scalar_one())

    events = Events()
    policy = ResiliencePolicy(retry=RetryPolicy(backoff=0.01))
    result = await run_sql(
        query, policy=policy, source="erp", owner="finance-it", clock=clock, events=events
    )
    engine.dispose()
    assert result == 6
    assert calls == 2
    assert len(clock.sleeps) == 1
    assert events.counters == {("retries", "erp"): 1}


async def test_run_sql_gives_up_and_never_retries_other_errors(clock: FakeClock) -> None:
    calls = 0

    def always_down() -> None:
        nonlocal calls
        calls += 1
        raise _disconnect()

    policy = ResiliencePolicy(retry=RetryPolicy(attempts=3), breaker=BreakerPolicy(failures=3))
    breaker = CircuitBreaker("erp", "finance-it", policy.breaker, clock)
    with pytest.raises(SourceUnavailable, match=r"owner: finance-it.*after 3 attempts"):
        await run_sql(
            always_down,
            policy=policy,
            source="erp",
            owner="finance-it",
            clock=clock,
            breaker=breaker,
        )
    assert calls == 3
    assert breaker.state == "open"

    def bad_sql() -> None:
        nonlocal calls
        calls += 1
        raise sa_exc.ProgrammingError("SELEC 1", {}, sqlite3.OperationalError("syntax error"))

    with pytest.raises(sa_exc.ProgrammingError):
        await run_sql(bad_sql, policy=policy, source="erp", owner=None, clock=clock)
    assert calls == 4
