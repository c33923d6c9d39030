"""What the page path does faster keeps doing the same thing:

* ``json_bytes`` writes records (canonical, and views with masks on strings, nested values, lines
  and extra) as the same JSON as ``record_to_json``;
* the audit writer batches what arrives while it lingers, and ``flush`` / ``close`` end the wait
  at once (a writer lingering an hour still writes on flush and on close).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from governance_kit import governed

from patchbay import Hub
from patchbay.core.audit import AuditEntry, AuditWriter, read_audit
from patchbay.core.policy import json_bytes, record_to_json

MASKS: dict[str, Any] = {
    "bot": {
        "entities": {
            "contact": {"fields": {"deny": ["phone"]}, "mask": {"email": "partial",
                                                                "address": "redact"}},
            "order": {"mask": {"customer_id": "hash", "lines.sku": "partial"}},
            "company": {"mask": {"extra.credit_limit": "redact", "email": "last4"}},
        }
    }
}


async def test_json_bytes_is_record_to_json(demo_dir: Path) -> None:
    async with Hub.from_config(governed(demo_dir, MASKS)) as hub:
        for entity in ("contact", "order", "company"):
            for consumer in ("local", "bot"):
                page = await hub.fetch(entity, limit=50, consumer=consumer)
                assert page.records
                body = {"entity": entity, "records": page.records, "next": page.next_cursor}
                expected = {**body, "records": [record_to_json(r) for r in page.records]}
                assert json.loads(json_bytes(body)) == expected
                # Not ASCII-escaped, compact: the bytes json.dumps would send.
                assert json_bytes(body) == json.dumps(
                    expected, ensure_ascii=False, separators=(",", ":")
                ).encode()


async def test_views_are_the_masked_records(demo_dir: Path) -> None:
    async with Hub.from_config(governed(demo_dir, MASKS)) as hub:
        clear = {r.id: r for r in (await hub.fetch("contact", limit=200)).records}
        seen = (await hub.fetch("contact", limit=200, consumer="bot")).records
        companies = (await hub.fetch("company", limit=200, consumer="bot")).records
    assert len(seen) == len(clear)
    for view in seen:
        record = clear[view.id]
        data = record_to_json(view)
        assert "phone" not in data
        assert data["first_name"] == record.first_name
        if record.email is not None:
            assert data["email"] == f"{record.email[0]}***@{record.email.split('@')[1]}"
        if record.address is not None and record.address.country is not None:
            assert data["address"]["country"] == "[redacted]"
    assert any(c.extra.get("credit_limit") == "[redacted]" for c in companies)


def _entry(number: int) -> AuditEntry:
    return AuditEntry(
        id=f"entry{number:027d}", at=datetime(2026, 1, 1, tzinfo=UTC), consumer="bot",
        via="rest", request_id=None, tenant=None, operation="fetch", entity="contact",
        filters=None, sources=["erp"], record_count=1, record_ids=["erp:1"], outcome="ok",
        error=None, duration_ms=1.0,
    )


def test_the_audit_writer_batches_and_flush_ends_the_wait(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    inserts: list[int] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
              many: bool) -> None:
        if statement.startswith("INSERT INTO patchbay_audit"):
            inserts.append(len(params) if many else 1)

    writer = AuditWriter(engine, linger=3600)
    try:
        for number in range(40):
            writer.submit(_entry(number))
        writer.flush()  # returns once written, though the writer would linger an hour
        assert len(read_audit(engine, limit=100)) == 40
        assert sum(inserts) == 40 and len(inserts) <= 2  # one batch (two if the first went alone)
        writer.submit(_entry(40))
    finally:
        writer.close()  # writes what is queued at once
    assert len(read_audit(engine, limit=100)) == 41
    engine.dispose()
