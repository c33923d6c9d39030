"""Fixtures and helpers of the auth tests: the real authorization server, Redis, the leak guard.

Not a conftest.py: tests/auth is shared with the credential-store tests, so each of these test
modules imports the fixtures it uses (``from auth_fixtures import ...``) and the autouse leak
guard applies to exactly these modules.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from oauth_test_server import AuthServer, State

from patchbay.auth import AuthSpec, TokenStore, build_auth, parse_auth_spec

TIMEOUT = httpx.Timeout(60.0)
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)


def spec(**data: Any) -> AuthSpec:
    return parse_auth_spec(data)


def make_auth(
    auth_spec: AuthSpec, token_client: httpx.AsyncClient, store: TokenStore, **kwargs: Any
) -> httpx.Auth:
    kwargs.setdefault("source", "crm")
    kwargs.setdefault("owner", "crm-team@acme.example")
    return build_auth(auth_spec, store=store, token_client=token_client, **kwargs)


REQUIRED = os.environ.get("PATCHBAY_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip, or fail when services are required (as in tests/conftest.py)."""
    if REQUIRED:
        pytest.fail(f"{reason} (PATCHBAY_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def auth_server() -> Iterator[AuthServer]:
    server = AuthServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(auth_server: AuthServer) -> AuthServer:
    """The session's server with counts and switches reset for this test."""
    auth_server.state.reset()
    return auth_server


@pytest.fixture
def state(server: AuthServer) -> State:
    return server.state


class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A random key prefix in the Redis on 127.0.0.1:6379; its keys are deleted afterwards."""
    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1)
    try:
        client.ping()
    except (redis.RedisError, OSError):
        client.close()
        unavailable("Redis is not running on 127.0.0.1:6379")
    prefix = f"pbtest:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(autouse=True)
def no_secret_in_logs(auth_server: AuthServer, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test runs with DEBUG logging; afterwards no secret may appear in any record.

    Covers patchbay's own records and httpx's (INFO, request URLs) and httpcore's (DEBUG).
    Authorization codes are not in the list: the test's stand-in browser logs the redirect URL
    that carries one, which is the browser's business, not patchbay's.
    """
    caplog.set_level(logging.DEBUG)
    yield
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    text = "\n".join(
        formatter.format(record)
        for when in ("setup", "call", "teardown")
        for record in caplog.get_records(when)  # type: ignore[arg-type]
    )
    leaked = [s[:12] + "…" for s in auth_server.state.secrets() if s in text]
    assert not leaked, f"secrets in log records: {leaked}"
