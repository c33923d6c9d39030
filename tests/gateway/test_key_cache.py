"""A verified API key is remembered for at most ``cache_seconds`` (1 s by default) per process:
revoked in that process it stops at once; revoked elsewhere (another worker, ``patchbay keys
revoke``) it stops within ``cache_seconds``. Unknown, wrong and revoked credentials are never
remembered. Time is a fake monotonic clock: nothing here sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from gateway_support import SECRET_KEY, Served, serve, write_config

from patchbay.config import load_config
from patchbay.gateway import ApiKeys


class Ticking:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    yield engine
    engine.dispose()


def test_a_key_revoked_by_another_process_stops_within_cache_seconds(engine: sa.Engine) -> None:
    clock = Ticking()
    worker = ApiKeys(engine, [SECRET_KEY], monotonic=clock)
    elsewhere = ApiKeys(engine, [SECRET_KEY])  # another worker, or `patchbay keys revoke`
    key, token = elsewhere.create("bot", "cached")
    assert worker.recently_verified(token) is None  # never verified here: ask the database
    assert worker.verify(token) == key
    assert worker.recently_verified(token) == key
    assert elsewhere.revoke(key.id)
    assert worker.verify(token) is None  # the database says no at once
    key2, token2 = elsewhere.create("bot", "cached too")
    assert worker.verify(token2) == key2
    assert elsewhere.revoke(key2.id)
    clock.t += 0.999
    assert worker.recently_verified(token2) == key2  # the documented bound, not longer
    clock.t += 0.001
    assert worker.recently_verified(token2) is None
    assert worker.verify(token2) is None


def test_a_key_revoked_in_the_same_process_stops_at_once(engine: sa.Engine) -> None:
    keys = ApiKeys(engine, [SECRET_KEY], monotonic=Ticking())
    key, token = keys.create("bot", "revoked here")
    assert keys.verify(token) == key
    assert keys.revoke(key.id)
    assert keys.recently_verified(token) is None
    assert keys.verify(token) is None


def test_only_the_right_secret_of_a_remembered_key_passes(engine: sa.Engine) -> None:
    keys = ApiKeys(engine, [SECRET_KEY], monotonic=Ticking())
    key, token = keys.create("bot", "real")
    assert keys.verify(token) == key
    prefix, key_id, secret = token.split("_", 2)
    forged = f"{prefix}_{key_id}_{'A' * len(secret)}"
    assert keys.recently_verified(forged) is None
    assert keys.verify(forged) is None
    assert keys.recently_verified(token) == key  # a forgery does not evict the real key
    for junk in ("", "pb_", "pb_0123456789abcdef_short", "not a key", token + "x"):
        assert keys.recently_verified(junk) is None


def test_keys_made_under_a_previous_secret_key_are_remembered_too(engine: sa.Engine) -> None:
    old = ApiKeys(engine, ["the-previous-secret-key-0123456789"])
    key, token = old.create("bot", "old")
    rotated = ApiKeys(engine, [SECRET_KEY, "the-previous-secret-key-0123456789"],
                      monotonic=Ticking())
    assert rotated.verify(token) == key
    assert rotated.recently_verified(token) == key


@pytest.fixture
def served_with_clock(demo_dir: Path) -> Iterator[tuple[Served, Ticking]]:
    write_config(demo_dir)
    config = load_config(demo_dir / "patchbay.yaml")
    (demo_dir / "state").mkdir(exist_ok=True)
    clock = Ticking()
    engine = sa.create_engine(config.state_url)
    try:
        keys = ApiKeys(engine, [SECRET_KEY], monotonic=clock)
        yield from ((served, clock) for served in serve(demo_dir, keys=keys))
    finally:
        engine.dispose()


def test_over_http_a_key_revoked_by_another_worker_stops_within_a_second(
    served_with_clock: tuple[Served, Ticking],
) -> None:
    served, clock = served_with_clock
    other_worker = ApiKeys(served.keys._engine, [SECRET_KEY])
    key, token = other_worker.create("support_bot", "revoked elsewhere")
    page = "/v1/entities/contact/records"
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get(page, params={"limit": 1}).status_code == 200
        assert other_worker.revoke(key.id)
        # Within the bound this worker may still accept it; once it has passed, never.
        assert c.get(page, params={"limit": 1}).status_code in (200, 401)
        clock.t += 1.0
        refused = c.get(page, params={"limit": 1})
    assert refused.status_code == 401
    assert "records" not in refused.json()
