"""``patchbay keys`` and ``patchbay serve``: keys made on the command line, and two workers
sharing rate limits and the audit log through Redis and PostgreSQL."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from gateway_support import CONSUMERS, write_config
from servers import free_port
from support import unavailable
from typer.testing import CliRunner

from patchbay.cli import app
from patchbay.config import load_config
from patchbay.hub import Hub

runner = CliRunner()
PATCHBAY = Path(sys.executable).parent / "patchbay"


def _cli(config: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_keys_create_list_revoke(demo_dir: Path) -> None:
    config = write_config(demo_dir)
    code, out, err = _cli(config, "keys", "create", "support_bot", "--name", "helpdesk",
                          "--scope", "read:contact")
    assert code == 0, err
    token = out.strip()
    assert token.startswith("pb_") and len(token.split("_", 2)[2]) >= 40
    key_id = token.split("_")[1]
    assert key_id in err and token not in err

    code, out, err = _cli(config, "keys", "list")
    assert code == 0
    assert key_id in out and "helpdesk" in out and "read:contact" in out
    assert token.split("_", 2)[2] not in out + err  # the secret is shown once, at create

    # the key works against a gateway over the same state, with its scope
    from patchbay.gateway import create_app

    hub = Hub(load_config(config))
    keys = create_app(hub).state.gateway.keys
    found = keys.verify(token)
    assert found is not None and found.consumer == "support_bot"
    assert found.scopes == frozenset({"read:contact"})

    assert _cli(config, "keys", "revoke", key_id)[0] == 0
    assert keys.verify(token) is None
    assert _cli(config, "keys", "revoke", key_id)[0] == 4
    code, _, err = _cli(config, "keys", "create", "nobody")
    assert code == 2 and "no consumer 'nobody'" in err


def test_keys_need_a_secret_key(demo_dir: Path) -> None:
    config = demo_dir / "patchbay.yaml"  # the demo config has no secret_key
    code, _, err = _cli(config, "keys", "create", "local")
    assert code == 2 and "secret_key" in err


def test_serve_refuses_unknown_consumers_before_starting(demo_dir: Path) -> None:
    config = write_config(demo_dir)
    code, _, err = _cli(config, "serve", "--metrics-consumer", "nobody", "--port", "1")
    assert code == 2 and "unknown consumers ['nobody']" in err
    jwt = demo_dir / "jwt.yaml"
    jwt.write_text("jwks: jwks.json\nissuer: https://i.test\naudience: a\n"
                   "consumers: {client-1: ghost}\n")
    code, _, err = _cli(config, "serve", "--jwt", str(jwt), "--port", "1")
    assert code == 2 and "ghost" in err


def _worker_of(log: Path, request_id: str) -> str:
    """The process id in the gateway's log line of a request (written as the response goes)."""
    pattern = re.compile(rf"^\S+ \S+ (\d+) \w+ patchbay\.gateway \[{re.escape(request_id)}\] ",
                         re.MULTILINE)
    for _ in range(500):
        found = pattern.search(log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.02)
    raise AssertionError(f"no log line for request {request_id}")


def _redis_url() -> str:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex(("127.0.0.1", 6379)) != 0:
            unavailable("Redis is not running on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/0"


@pytest.mark.services
def test_two_workers_share_rate_limits_and_audit_each_request_once(
    demo_dir: Path, postgres_url: str
) -> None:
    redis = _redis_url()
    # A consumer name of its own: its rate limit lives in Redis beyond this test.
    burst = f"burst_{uuid.uuid4().hex[:8]}"
    consumers = {**CONSUMERS, burst: {"rate_limit": {"requests": 5, "per_seconds": 3600},
                                      "entities": {"product": {}}}}
    config = write_config(demo_dir, state=postgres_url, redis=redis, consumers=consumers)
    code, out, err = _cli(config, "keys", "create", burst)
    assert code == 0, err
    token = out.strip()
    _, local_out, _ = _cli(config, "keys", "create", "local")
    local_token = local_out.strip()

    port = free_port()
    log = demo_dir / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(PATCHBAY), "serve", "--config", str(config), "--port", str(port),
             "--workers", "2"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "patchbay serve did not start"
            time.sleep(0.2)

        # Requests on fresh connections until both workers have served this consumer (the
        # kernel picks the worker; the log line of each request names its process): with a
        # limit per worker, the second worker would serve 5 more.
        statuses: dict[str, int] = {}
        served_by: dict[str, str] = {}
        while len(set(served_by.values())) < 2 or len(served_by) < 12:
            assert len(served_by) < 300, f"one worker took every connection: {served_by}"
            rid = f"burst-{len(served_by)}-{uuid.uuid4().hex[:6]}"
            response = httpx.get(
                f"{url}/v1/entities/product/records",
                params={"limit": 2},
                headers={"Authorization": f"Bearer {token}", "X-Request-ID": rid},
            )
            statuses[rid] = response.status_code
            served_by[rid] = _worker_of(log, rid)
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
                assert response.json()["type"] == "urn:patchbay:problem:rate-limited"
        for i in range(6):
            rid = f"local-{i}-{uuid.uuid4().hex[:6]}"
            response = httpx.get(
                f"{url}/v1/entities/invoice/records",
                params={"limit": 3},
                headers={"Authorization": f"Bearer {local_token}", "X-Request-ID": rid},
            )
            statuses[rid] = response.status_code
    finally:
        process.send_signal(signal.SIGINT)  # graceful: each worker flushes its audit log
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    logged = log.read_text()
    assert "GET /v1/entities/product/records 429" in logged
    assert f"[{next(iter(statuses))}]" in logged  # the request id is in the log line
    burst_statuses = [s for rid, s in statuses.items() if rid.startswith("burst-")]
    assert burst_statuses.count(200) == 5  # the limit holds across both workers
    assert burst_statuses.count(429) == len(burst_statuses) - 5
    assert [s for rid, s in statuses.items() if rid.startswith("local-")] == [200] * 6

    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT request_id, consumer, via, outcome FROM patchbay_audit")
            ).all()
    finally:
        engine.dispose()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.request_id] = counts.get(row.request_id, 0) + 1
    assert {rid: counts.get(rid, 0) for rid in statuses} == dict.fromkeys(statuses, 1)
    assert {row.via for row in rows if row.request_id in statuses} == {"rest"}
