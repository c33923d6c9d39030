# ruff: noqa: F811 - pytest fixtures imported from auth_fixtures and used as arguments
"""One refresh for many callers (in a process and across processes), and 401 handling."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from auth_fixtures import (  # noqa: F401 - fixtures
    LIMITS,
    TIMEOUT,
    FakeClock,
    auth_server,
    clock,
    make_auth,
    no_secret_in_logs,
    redis_prefix,
    server,
    spec,
    state,
)
from oauth_test_server import AuthServer, State

from patchbay.auth import AuthError, MemoryTokenStore

ROOT = Path(__file__).resolve().parents[2]


def cc_spec(state: State, method: str = "client_secret_basic") -> object:
    return spec(
        scheme="oauth2_client_credentials",
        token_url=state.token_url,
        client_id="svc",
        client_secret=state.svc_secret,
        auth_method=method,
        scope="read",
    )


async def test_500_concurrent_requests_without_a_token_make_one_token_request(
    server: AuthServer, state: State
) -> None:
    state.token_delay = 0.1  # keep the refresh in flight while the 500 requests queue up
    async with httpx.AsyncClient(timeout=TIMEOUT) as token_client:
        auth = make_auth(cc_spec(state), token_client, MemoryTokenStore())  # type: ignore[arg-type]
        async with httpx.AsyncClient(
            base_url=server.url, auth=auth, timeout=TIMEOUT, limits=LIMITS
        ) as client:
            responses = await asyncio.gather(*(client.get("/resource") for _ in range(500)))
    assert Counter(r.status_code for r in responses) == {200: 500}
    assert state.token_requests == 1


async def test_500_concurrent_requests_with_an_expired_token_make_one_refresh(
    server: AuthServer, state: State, clock: FakeClock
) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as token_client:
        auth = make_auth(cc_spec(state), token_client, MemoryTokenStore(), clock=clock)  # type: ignore[arg-type]
        async with httpx.AsyncClient(
            base_url=server.url, auth=auth, timeout=TIMEOUT, limits=LIMITS
        ) as client:
            assert (await client.get("/resource")).status_code == 200
            assert state.token_requests == 1
            clock.advance(3600 - 29)  # inside the 30 s skew: refresh before use
            state.token_delay = 0.1
            responses = await asyncio.gather(*(client.get("/resource") for _ in range(500)))
    assert Counter(r.status_code for r in responses) == {200: 500}
    assert state.token_requests == 2


async def test_a_token_inside_its_lifetime_is_reused(
    server: AuthServer, state: State, clock: FakeClock
) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as token_client:
        auth = make_auth(cc_spec(state), token_client, MemoryTokenStore(), clock=clock)  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=server.url, auth=auth) as client:
            await client.get("/resource")
            clock.advance(3600 - 31)
            await client.get("/resource")
    assert state.token_requests == 1


async def test_no_expires_in_uses_the_default_lifetime(
    server: AuthServer, state: State, clock: FakeClock
) -> None:
    state.expires_in = None  # the server says nothing: DEFAULT_TTL (300 s) applies
    async with httpx.AsyncClient(timeout=TIMEOUT) as token_client:
        auth = make_auth(cc_spec(state), token_client, MemoryTokenStore(), clock=clock)  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=server.url, auth=auth) as client:
            await client.get("/resource")
            clock.advance(300 - 31)
            await client.get("/resource")
            assert state.token_requests == 1
            clock.advance(2)
            await client.get("/resource")
    assert state.token_requests == 2


async def test_a_401_refreshes_once_and_retries_once(server: AuthServer, state: State) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as token_client:
        auth = make_auth(cc_spec(state), token_client, MemoryTokenStore())  # type: ignore[arg-type]
        async with httpx.AsyncClient(
            base_url=server.url, auth=auth, timeout=TIMEOUT, limits=LIMITS
        ) as client:
            assert (await client.get("/resource")).status_code == 200
            state.revoke_all()  # the server revokes the token before it expires
            hits = state.hits["resource"]
            responses = await asyncio.gather(*(client.get("/resource") for _ in range(50)))
    assert Counter(r.status_code for r in responses) == {200: 50}
    assert state.token_requests == 2  # one refresh shared by all 50 rejected requests
    assert state.hits["resource"] - hits == 100  # each request: one 401, one retry


async def test_a_resource_that_always_answers_401_is_not_retried_in_a_loop(
    server: AuthServer, state: State
) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as token_client:
        auth = make_auth(cc_spec(state), token_client, MemoryTokenStore())  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=server.url, auth=auth) as client:
            response = await client.get("/always401")
            assert response.status_code == 401
            assert state.hits["always401"] == 2  # the request and exactly one retry
            assert state.token_requests == 2  # the first token and exactly one refresh
            response = await client.get("/always401")
    assert response.status_code == 401
    assert state.hits["always401"] == 4
    assert state.token_requests == 3


def test_sync_client_with_a_token_scheme_says_to_use_an_async_client(
    server: AuthServer, state: State
) -> None:
    token_client = httpx.AsyncClient()
    auth = make_auth(cc_spec(state), token_client, MemoryTokenStore())  # type: ignore[arg-type]
    with httpx.Client(base_url=server.url, auth=auth) as client, pytest.raises(AuthError) as err:
        client.get("/resource")
    assert "httpx.AsyncClient" in str(err.value)
    assert state.token_requests == 0


async def test_one_failed_refresh_is_shared_by_the_waiting_callers(
    server: AuthServer, state: State
) -> None:
    state.mode = "500"
    state.token_delay = 0.1
    async with httpx.AsyncClient(timeout=TIMEOUT) as token_client:
        auth = make_auth(cc_spec(state), token_client, MemoryTokenStore())  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=server.url, auth=auth, limits=LIMITS) as client:
            results = await asyncio.gather(
                *(client.get("/resource") for _ in range(100)), return_exceptions=True
            )
    assert all(isinstance(r, AuthError) and r.retryable for r in results)
    assert state.token_requests == 1


SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from collections import Counter
    import httpx
    import redis.asyncio as aioredis
    from patchbay.auth import MemoryTokenStore, build_auth, parse_auth_spec

    async def main() -> None:
        base, prefix = sys.argv[1], sys.argv[2]
        spec = parse_auth_spec({
            "scheme": "oauth2_client_credentials", "token_url": base + "/token",
            "client_id": "svc", "client_secret": os.environ["SVC_SECRET"], "scope": "read",
        })
        redis = aioredis.Redis(host="127.0.0.1", port=6379)
        async with httpx.AsyncClient(timeout=60) as token_client:
            auth = build_auth(spec, source="crm", owner=None, store=MemoryTokenStore(),
                              token_client=token_client, redis=redis, redis_prefix=prefix)
            async with httpx.AsyncClient(base_url=base, auth=auth, timeout=60) as client:
                print("ready", flush=True)
                await asyncio.to_thread(sys.stdin.readline)
                responses = await asyncio.gather(*(client.get("/resource") for _ in range(200)))
        await redis.aclose()
        print(json.dumps(Counter(r.status_code for r in responses)), flush=True)

    asyncio.run(main())
    """
)


def test_two_processes_sharing_redis_make_one_token_request(
    server: AuthServer, state: State, redis_prefix: str, tmp_path: Path
) -> None:
    state.token_delay = 0.3  # both processes ask while the one refresh is in flight
    script = tmp_path / "worker.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "SVC_SECRET": state.svc_secret, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), server.url, redis_prefix],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr
        for proc in procs:  # start both bursts together
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == {"200": 200}
    assert state.token_requests == 1


async def test_redis_shares_the_fresh_token_between_managers(
    server: AuthServer, state: State, redis_prefix: str
) -> None:
    """Two independent auth objects (as in two processes) over one Redis: one token request."""
    redis = aioredis.Redis(host="127.0.0.1", port=6379)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as token_client:
            auths = [
                make_auth(
                    cc_spec(state),
                    token_client,
                    MemoryTokenStore(),
                    redis=redis,  # type: ignore[arg-type]
                    redis_prefix=redis_prefix,
                )
                for _ in range(2)
            ]
            state.token_delay = 0.2
            clients = [httpx.AsyncClient(base_url=server.url, auth=a, limits=LIMITS) for a in auths]
            responses = await asyncio.gather(
                *(c.get("/resource") for c in clients for _ in range(100))
            )
            for c in clients:
                await c.aclose()
    finally:
        await redis.aclose()
    assert Counter(r.status_code for r in responses) == {200: 200}
    assert state.token_requests == 1
