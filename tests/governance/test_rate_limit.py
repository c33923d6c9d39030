"""A consumer's rate limit: refused at once with the seconds to wait (counted, not timed); one
bucket per consumer, shared by every process through Redis when ``redis:`` is configured."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from governance_kit import FakeClock, governed, unavailable

from patchbay import AccessDenied, Hub
from patchbay.config import load_config
from patchbay.core.consumers import RateLimited

REDIS = "redis://127.0.0.1:6379/0"


def bot(requests: int, per_seconds: float) -> dict[str, Any]:
    return {
        "rate_limit": {"requests": requests, "per_seconds": per_seconds},
        "entities": {"contact": {}, "order": {}},
    }


async def test_over_the_limit_is_refused_with_the_wait(demo_dir: Path) -> None:
    clock = FakeClock()
    config = load_config(governed(demo_dir, {"bot": bot(3, 60)}))
    async with Hub(config, clock=clock) as hub:
        for _ in range(3):
            await hub.get("contact", "erp:10002", consumer="bot")
        with pytest.raises(RateLimited) as info:
            await hub.get("contact", "erp:10002", consumer="bot")
        assert info.value.retry_after == pytest.approx(20.0)  # one request per 20 s
        assert info.value.consumer == "bot"
        assert not isinstance(info.value, AccessDenied)
        # A refusal takes nothing: the wait does not grow.
        with pytest.raises(RateLimited) as again:
            await hub.fetch("order", consumer="bot")
        assert again.value.retry_after == pytest.approx(20.0)
        clock.advance(20)
        assert len([r async for r in hub.query("order", consumer="bot", limit=2)]) == 2
        with pytest.raises(RateLimited):
            [r async for r in hub.query("order", consumer="bot")]
        # Other consumers have their own buckets; unlimited ones have none.
        for _ in range(10):
            await hub.get("contact", "erp:10002")


async def test_refused_requests_never_reach_the_bucket(demo_dir: Path) -> None:
    clock = FakeClock()
    config = load_config(governed(demo_dir, {"bot": bot(1, 60)}))
    async with Hub(config, clock=clock) as hub:
        for _ in range(3):  # denied by policy: not counted
            with pytest.raises(AccessDenied):
                await hub.get("company", "erp:10002", consumer="bot")
        await hub.get("contact", "erp:10002", consumer="bot")
        with pytest.raises(RateLimited):
            await hub.get("contact", "erp:10002", consumer="bot")


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


async def test_the_limit_holds_across_processes_sharing_redis(demo_dir: Path) -> None:
    if not _redis_up():
        unavailable("Redis on 127.0.0.1:6379")
    name = f"bot-{uuid.uuid4().hex[:8]}"  # a bucket of its own in the shared Redis
    config = load_config(governed(demo_dir, {name: bot(3, 3600)}, redis=REDIS))
    async with Hub(config) as first, Hub(config) as second:
        await first.get("contact", "erp:10002", consumer=name)
        await second.get("contact", "erp:10002", consumer=name)
        await first.get("contact", "erp:10002", consumer=name)
        for hub in (second, first):
            with pytest.raises(RateLimited) as info:
                await hub.get("contact", "erp:10002", consumer=name)
            assert info.value.retry_after > 0
