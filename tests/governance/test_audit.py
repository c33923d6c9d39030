"""The audit log: exactly one row per query, fetch and get — ok, denied, failed, rate limited,
abandoned — written off the read path, flushed on close; on SQLite and PostgreSQL; and
``patchbay audit``."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from governance_kit import FakeClock, governed
from typer.testing import CliRunner

from patchbay import AccessDenied, Hub, QueryError, RecordNotFound, SyncHub
from patchbay.cli import app
from patchbay.config import load_config
from patchbay.core.audit import MAX_IDS, AuditEntry, read_audit
from patchbay.core.consumers import RateLimited
from patchbay.core.errors import SourceError

BOT: dict[str, Any] = {
    "entities": {
        "contact": {"mask": {"email": "partial"}, "where": "source = erp"},
        "order": {},
        "invoice": {"operations": ["get"]},
    }
}


def audit_rows(config_path: Path) -> list[AuditEntry]:
    config = load_config(config_path)
    engine = sa.create_engine(config.state_url)
    try:
        return read_audit(engine, limit=10_000)
    finally:
        engine.dispose()


async def test_a_finished_query_is_audited_once(demo_dir: Path) -> None:
    path = governed(demo_dir, {"bot": BOT})
    async with Hub.from_config(path) as hub:
        seen = [
            r
            async for r in hub.query(
                "contact", consumer="bot", via="rest", request_id="req-1", last_name="Smith"
            )
        ]
    [row] = audit_rows(path)
    assert (row.consumer, row.via, row.request_id, row.operation, row.entity) == (
        "bot",
        "rest",
        "req-1",
        "query",
        "contact",
    )
    assert row.outcome == "ok" and row.error is None
    assert row.record_count == len(seen) > 0
    assert row.record_ids == [r.id for r in seen]
    assert row.sources == ["erp"]  # the row filter leaves the CRM unread
    assert row.filters == {"field": "last_name", "op": "eq", "value": "Smith"}
    assert row.duration_ms >= 0
    assert row.at.tzinfo is not None


async def test_fetch_and_get_are_audited_once_each(demo_dir: Path) -> None:
    path = governed(demo_dir, {"bot": BOT})
    async with Hub.from_config(path) as hub:
        page = await hub.fetch("order", consumer="bot", limit=7, via="mcp", request_id="r2")
        again = await hub.fetch("order", consumer="bot", limit=7, cursor=page.next_cursor)
        got = await hub.get("contact", "erp:10002", consumer="bot", via="tool", tenant=None)
    rows = sorted(audit_rows(path), key=lambda r: r.at)
    assert [(r.operation, r.via, r.record_count, r.outcome) for r in rows] == [
        ("fetch", "mcp", 7, "ok"),
        ("fetch", "python", 7, "ok"),
        ("get", "tool", 1, "ok"),
    ]
    assert rows[0].record_ids == [r.id for r in page.records]
    assert rows[1].record_ids == [r.id for r in again.records]
    assert rows[2].record_ids == [got.id] and rows[2].sources == ["erp"]


async def test_refusals_and_failures_are_audited_once(demo_dir: Path) -> None:
    path = governed(demo_dir, {"bot": BOT})
    async with Hub.from_config(path) as hub:
        with pytest.raises(AccessDenied):
            [r async for r in hub.query("company", consumer="bot")]
        with pytest.raises(AccessDenied):
            await hub.fetch("invoice", consumer="bot")
        with pytest.raises(AccessDenied):
            [r async for r in hub.query("contact", consumer="bot", email="ann@acme.example")]
        with pytest.raises(QueryError):
            await hub.fetch("contact", consumer="bot", planet="Mars")
        with pytest.raises(RecordNotFound):
            await hub.get("contact", "crm:1", consumer="bot")  # outside the row filter
        (demo_dir / "crm_contacts.csv").unlink()
        with pytest.raises(SourceError):
            [r async for r in hub.query("contact")]
    rows = sorted(audit_rows(path), key=lambda r: r.at)
    assert [(r.operation, r.entity, r.outcome, r.error) for r in rows] == [
        ("query", "company", "denied", "AccessDenied"),
        ("fetch", "invoice", "denied", "AccessDenied"),
        ("query", "contact", "denied", "AccessDenied"),
        ("fetch", "contact", "error", "QueryError"),
        ("get", "contact", "error", "RecordNotFound"),
        ("query", "contact", "error", "SourceUnavailable"),
    ]
    # The refused filter is kept, its masked value masked.
    assert rows[2].filters == {"field": "email", "op": "eq", "value": "a***@acme.example"}
    assert all(r.record_count == 0 for r in rows[:-1])
    # The ERP's contacts were delivered before the CRM failed: the row says so.
    assert rows[-1].record_count == 60


async def test_rate_limited_requests_are_audited(demo_dir: Path) -> None:
    bot = {**BOT, "rate_limit": {"requests": 1, "per_seconds": 60}}
    path = governed(demo_dir, {"bot": bot})
    clock = FakeClock()
    async with Hub(load_config(path), clock=clock) as hub:
        await hub.get("contact", "erp:10002", consumer="bot")
        clock.advance(1)
        with pytest.raises(RateLimited):
            await hub.get("contact", "erp:10002", consumer="bot")
    rows = sorted(audit_rows(path), key=lambda r: r.at)
    assert [(r.outcome, r.error) for r in rows] == [("ok", None), ("rate_limited", "RateLimited")]


async def test_an_abandoned_stream_is_audited_once_with_what_it_delivered(
    demo_dir: Path,
) -> None:
    path = governed(demo_dir, {"bot": BOT})
    async with Hub.from_config(path) as hub:
        # Left mid-way and dropped: the finalizer records it.
        stream = hub.query("order", consumer="bot", request_id="dropped")
        first = [await stream.__anext__() for _ in range(5)]
        del stream
        gc.collect()
        # Left mid-way and kept: closed (and recorded) by hub.close().
        kept = hub.query("order", consumer="bot", request_id="kept")
        second = [await kept.__anext__() for _ in range(3)]
        # Broken out of, then closed by the caller; closing again changes nothing.
        closed = hub.query("order", consumer="bot", request_id="closed")
        async for _ in closed:
            break
        await closed.aclose()
        await closed.aclose()
        # Never iterated at all.
        hub.query("order", consumer="bot", request_id="unused")
        gc.collect()
    rows = {r.request_id: r for r in audit_rows(path)}
    assert len(audit_rows(path)) == 4
    assert rows["dropped"].record_count == 5
    assert rows["dropped"].record_ids == [r.id for r in first]
    assert rows["kept"].record_count == 3 and rows["kept"].record_ids == [r.id for r in second]
    assert rows["closed"].record_count == 1
    assert rows["unused"].record_count == 0
    assert all(r.outcome == "ok" for r in rows.values())


async def test_record_ids_are_capped_with_the_total(demo_dir: Path) -> None:
    path = governed(demo_dir, {"bot": BOT})
    async with Hub.from_config(path) as hub:
        orders = [r async for r in hub.query("order", consumer="bot")]
    [row] = audit_rows(path)
    assert len(orders) > MAX_IDS
    assert row.record_count == len(orders)
    assert row.record_ids == [r.id for r in orders[:MAX_IDS]]


def test_the_sync_facade_flushes_on_close(demo_dir: Path) -> None:
    path = governed(demo_dir, {"bot": BOT})
    with SyncHub.from_config(path) as hub:
        assert len(list(hub.query("order", consumer="bot", limit=3))) == 3
        hub.get("contact", "erp:10002", consumer="bot")
    assert sorted(r.operation for r in audit_rows(path)) == ["get", "query"]


async def test_the_audit_waits_for_no_one_and_close_writes_it_all(demo_dir: Path) -> None:
    path = governed(demo_dir, {"bot": BOT})
    async with Hub.from_config(path) as hub:
        for _ in range(50):
            await hub.get("contact", "erp:10002", consumer="bot")
    # Everything is in the table the moment close() returns.
    assert len(audit_rows(path)) == 50


async def test_the_audit_on_postgresql(demo_dir: Path, postgres_url: str) -> None:
    path = governed(demo_dir, {"bot": BOT}, state=postgres_url)
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:  # the session's schema, shared with other tests: start empty
        for table in ("patchbay_audit", "api_keys", "patchbay_credentials", "patchbay_quarantine",
                      "patchbay_schema_baseline", "patchbay_alembic_version"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    try:
        async with Hub.from_config(path) as hub:
            page = await hub.fetch("order", consumer="bot", limit=4, request_id="pg")
            with pytest.raises(AccessDenied):
                await hub.fetch("company", consumer="bot")
        rows = read_audit(engine, consumer="bot")
        assert {(r.request_id, r.outcome, r.record_count) for r in rows} == {
            ("pg", "ok", 4),
            (None, "denied", 0),
        }
        ok = next(r for r in rows if r.outcome == "ok")
        assert ok.record_ids == [r.id for r in page.records]
        assert read_audit(engine, outcome="denied")[0].entity == "company"
    finally:
        engine.dispose()


def test_the_audit_command(demo_dir: Path, tmp_path: Path) -> None:
    path = governed(demo_dir, {"bot": BOT, "finance": {"entities": {"invoice": {}}}})
    with SyncHub.from_config(path) as hub:
        hub.fetch("order", consumer="bot", limit=2, request_id="one")
        hub.fetch("invoice", consumer="finance", limit=3, request_id="two")
        with pytest.raises(AccessDenied):
            hub.fetch("company", consumer="finance", request_id="three")
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(app, ["--config", str(path), "audit", *args])
        assert result.exit_code == 0, result.output
        return result.output

    listed = json.loads(run("--output", "json"))
    assert [r["request_id"] for r in listed] == ["three", "two", "one"]  # newest first
    assert [r["request_id"] for r in json.loads(run("-o", "json", "--consumer", "finance"))] == [
        "three",
        "two",
    ]
    assert [r["request_id"] for r in json.loads(run("-o", "json", "--entity", "order"))] == ["one"]
    denied = json.loads(run("-o", "json", "--outcome", "denied"))
    assert [(r["request_id"], r["error"]) for r in denied] == [("three", "AccessDenied")]
    assert len(json.loads(run("-o", "json", "--limit", "1"))) == 1
    assert json.loads(run("-o", "json", "--since", "2000-01-01")) == listed
    assert json.loads(run("-o", "json", "--since", "1h")) == listed
    assert json.loads(run("-o", "json", "--since", "2999-01-01")) == []
    lines = run("-o", "jsonl").strip().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["three", "two", "one"]
    table = run()
    assert "finance" in table and "denied (AccessDenied)" in table and "invoice" in table
    bad = runner.invoke(app, ["--config", str(path), "audit", "--outcome", "maybe"])
    assert bad.exit_code == 2
    bad = runner.invoke(app, ["--config", str(path), "audit", "--since", "yesterday"])
    assert bad.exit_code == 2
    missing = runner.invoke(app, ["--config", str(tmp_path / "none.yaml"), "audit"])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_the_state_url_can_be_any_config_state(demo_dir: Path) -> None:
    # A relative SQLite state is beside the config, wherever the command runs.
    path = governed(demo_dir, {"bot": BOT})
    data = yaml.safe_load(path.read_text())
    assert data["state"].startswith("sqlite:///")
    with SyncHub.from_config(path) as hub:
        hub.get("contact", "erp:10002", consumer="bot")
    assert (path.parent / "state" / "state.db").exists()


async def test_a_front_door_must_be_named_rightly(demo_dir: Path) -> None:
    async with Hub.from_config(governed(demo_dir, {"bot": BOT})) as hub:
        with pytest.raises(QueryError, match="front door"):
            hub.query("contact", consumer="bot", via="carrier-pigeon")


async def test_reads_do_not_wait_for_the_audit(demo_dir: Path) -> None:
    path = governed(demo_dir, {"bot": BOT})
    async with Hub.from_config(path) as hub:  # creates the state database and its tables
        await hub.get("contact", "erp:10002", consumer="bot")
    state = sa.create_engine(load_config(path).state_url)
    try:
        with state.connect() as lock:
            lock.exec_driver_sql("BEGIN EXCLUSIVE")  # nobody can write the state database now
            async with Hub.from_config(path) as hub:
                got = [await hub.get("contact", "erp:10002", consumer="bot") for _ in range(3)]
                assert len(got) == 3  # served while the audit cannot be written
                lock.exec_driver_sql("ROLLBACK")
        # close() wrote what had waited.
        assert len(audit_rows(path)) == 4
    finally:
        state.dispose()
