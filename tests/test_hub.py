"""The Hub over the demo: an ERP in SQLite and a cp1252 CSV export from a CRM, as one."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from patchbay import (
    AccessDenied,
    Contact,
    CursorError,
    Hub,
    Invoice,
    QuarantinedRecord,
    QueryError,
    RecordNotFound,
    SourceUnavailable,
    SyncHub,
)
from patchbay.config import load_config, load_config_data
from patchbay.core.entities import Record
from patchbay.core.registry import EntityRegistry
from patchbay.demo.generate import BROKEN, CRM_TABLE


def planted(table: str, outcome: str) -> int:
    return BROKEN.count(table, outcome)  # type: ignore[arg-type]


async def all_of(hub: Hub, entity: str, **kwargs: Any) -> tuple[list[Record], Any]:
    stream = hub.query(entity, **kwargs)
    return [r async for r in stream], stream


async def test_one_query_over_both_sources(demo_dir: Path) -> None:
    async with Hub.from_config(demo_dir / "patchbay.yaml") as hub:
        records, stream = await all_of(hub, "contact")
    crm_rows = 40
    assert {r.source for r in records} == {"erp", "crm"}
    assert all(isinstance(r, Contact) for r in records)
    quality = stream.quality
    assert quality.sources["erp"].read == 60
    assert quality.sources["crm"].read == crm_rows
    # Contacts need no name: only the CRM row without an id is quarantined.
    assert quality.quarantined == planted(CRM_TABLE, "quarantine") == 1
    assert len(records) == 60 + crm_rows - 1
    assert quality.delivered == len(records)
    [bad] = quality.quarantined_rows
    assert bad.source == "crm"
    assert bad.reasons == ("id: missing (Contact ID)",)
    # Nulled fields are counted with their reasons, nothing is dropped silently.
    assert quality.sources["crm"].nulled == {
        "email: not a valid email address": 1,
        "created_at: not a date in format %m/%d/%Y": 1,
    }


async def test_companies_quarantine_and_null_exactly_the_planted_rows(demo_dir: Path) -> None:
    async with Hub.from_config(demo_dir / "patchbay.yaml") as hub:
        records, stream = await all_of(hub, "company")
        stored = hub.quarantine.list(entity="company")
    quality = stream.quality.sources["erp"]
    assert quality.read == 60
    assert quality.quarantined == 1
    assert len(records) == 59
    assert [(q.remote_id, q.reasons) for q in stored] == [
        ("10004", ("name: required, but missing",))
    ]
    assert stored[0].raw["CUST_NO"] == 10004
    nulled = sum(quality.nulled.values())
    expected_nulls = [p for p in BROKEN.in_table("CUSTOMERS") if p.outcome == "null"]
    assert nulled == len(expected_nulls) == 6


async def test_the_same_bad_row_is_not_stored_twice(demo_dir: Path) -> None:
    async with Hub.from_config(demo_dir / "patchbay.yaml") as hub:
        await all_of(hub, "invoice")
        await all_of(hub, "invoice")
        entries = hub.quarantine.list(entity="invoice")
    assert sorted(e.remote_id for e in entries if e.remote_id) == ["500003", "500007", "500011"]
    assert {e.times_seen for e in entries} == {2}
    line_reason = next(e for e in entries if e.remote_id == "500007").reasons
    assert line_reason[0].startswith("lines[2].quantity: ")


async def test_strict_mode_raises_on_the_first_bad_row(demo_dir: Path) -> None:
    async with Hub.from_config(demo_dir / "patchbay.yaml") as hub:
        with pytest.raises(QuarantinedRecord, match="10004.*name: required"):
            await all_of(hub, "company", strict=True)


async def test_get_with_lines_and_references(demo_dir: Path) -> None:
    async with Hub.from_config(demo_dir / "patchbay.yaml") as hub:
        invoice = await hub.get("invoice", "erp:500002")
        assert isinstance(invoice, Invoice)
        assert invoice.total is not None
        assert sum(line.total.amount for line in invoice.lines if line.total) == (
            invoice.total.amount
        )
        customer = await hub.get("company", invoice.customer_id or "")
        assert customer.id == "erp:10010"
        crm = await hub.get("contact", "crm:CRM-00008")
        assert crm.source == "crm"
        with pytest.raises(RecordNotFound):
            await hub.get("invoice", "erp:1")
        with pytest.raises(RecordNotFound):
            await hub.get("invoice", "nosuchsource:1")
        with pytest.raises(QuarantinedRecord, match="total"):
            await hub.get("invoice", "erp:500003")
        with pytest.raises(QueryError, match="not a canonical id"):
            await hub.get("invoice", "500002")


async def test_customer_invoices_by_reference(demo_dir: Path) -> None:
    async with Hub.from_config(demo_dir / "patchbay.yaml") as hub:
        everything, _ = await all_of(hub, "invoice")
        mine, _ = await all_of(hub, "invoice", customer_id="erp:10010")
        plan = await hub.explain("invoice", customer_id="erp:10010")
    expected = [r.id for r in everything if getattr(r, "customer_id", None) == "erp:10010"]
    assert expected
    assert [r.id for r in mine] == expected
    [erp] = plan["sources"]
    assert erp["pushed_down"] == [
        {"path": "CUST_NO", "op": "eq", "value": "10010", "case_insensitive": False}
    ]


async def test_pages_cover_both_sources_without_gaps(demo_dir: Path) -> None:
    async with Hub.from_config(demo_dir / "patchbay.yaml") as hub:
        everything, _ = await all_of(hub, "contact")
        for limit in (1, 13, 60, 99, 100):
            seen: list[str] = []
            cursor = None
            while True:
                page = await hub.fetch("contact", limit=limit, cursor=cursor)
                seen.extend(r.id for r in page.records)
                assert len(page.records) <= limit
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert seen == [r.id for r in everything], limit


async def test_cursors_refuse_tampering_and_other_queries(demo_dir: Path) -> None:
    async with Hub.from_config(demo_dir / "patchbay.yaml") as hub:
        page = await hub.fetch("contact", limit=5)
        assert page.next_cursor is not None
        with pytest.raises(CursorError):
            await hub.fetch("contact", limit=5, cursor=page.next_cursor[:-3] + "AAA")
        with pytest.raises(CursorError, match="different query"):
            await hub.fetch("contact", limit=5, cursor=page.next_cursor, email__contains="a")
        # The key persists beside the state database: a new Hub accepts the cursor.
    async with Hub.from_config(demo_dir / "patchbay.yaml") as again:
        more = await again.fetch("contact", limit=5, cursor=page.next_cursor)
    assert more.records[0].id not in {r.id for r in page.records}


@pytest.mark.parametrize(
    "where",
    [
        {"email": "purchasing@kessler-tools.de"},
        {"email__contains": "OPTICS"},
        {"address__country__in": "GB,IE"},
        {"full_name__contains": "müller"},
        {"created_at__gte": "2020-01-01", "created_at__lt": "2022-06-30"},
        {"company_id": "erp:10010"},
        {"id__in": "erp:10001,crm:CRM-00008,erp:99999"},
        {"phone__isnull": True},
        {"email__ne": "sales@example.com"},
        {"updated_at__gte": "2019-06-01T12:00:00+02:00"},
    ],
)
async def test_push_down_never_changes_results(demo_dir: Path, where: dict[str, Any]) -> None:
    config = load_config(demo_dir / "patchbay.yaml")
    async with Hub(config) as pushed, Hub(config, pushdown=False) as memory:
        with_push, _ = await all_of(pushed, "contact", where=where)
        without, _ = await all_of(memory, "contact", where=where)
    assert [r.id for r in with_push] == [r.id for r in without]


async def test_since_needs_updated_at_everywhere(demo_dir: Path) -> None:
    async with Hub.from_config(demo_dir / "patchbay.yaml") as hub:
        with pytest.raises(QueryError, match="since needs updated_at.*erp"):
            await all_of(hub, "product", since="2020-01-01")
        recent, _ = await all_of(hub, "invoice", since="2020-01-01T00:00:00Z")
    assert recent
    assert all(r.updated_at and r.updated_at.year >= 2020 for r in recent)


async def test_order_by_needs_a_sortable_field(demo_dir: Path) -> None:
    async with Hub.from_config(demo_dir / "patchbay.yaml") as hub:
        with pytest.raises(QueryError, match="cannot order contact by email"):
            await all_of(hub, "contact", order_by="email")
        products, _ = await all_of(hub, "product", order_by="-sku")
    skus = [getattr(p, "sku", None) for p in products]
    assert skus == sorted(skus, reverse=True)


async def test_unreachable_source_names_source_and_owner(demo_dir: Path) -> None:
    (demo_dir / "erp.sqlite").unlink()
    async with Hub.from_config(demo_dir / "patchbay.yaml") as hub:
        with pytest.raises(SourceUnavailable) as info:
            await all_of(hub, "contact")
        assert "erp" in str(info.value)
        assert "finance-systems@acme.example" in str(info.value)
        # With partial results the CRM still answers and the failure is reported.
        records, stream = await all_of(hub, "contact", partial=True)
        assert {r.source for r in records} == {"crm"}
        [failure] = stream.errors
        assert (failure.source, failure.owner, failure.unavailable) == (
            "erp",
            "finance-systems@acme.example",
            True,
        )
        health = await hub.check()
        assert health["crm"] is None
        assert health["erp"] is not None


async def test_consumers(demo_dir: Path) -> None:
    data = yaml.safe_load((demo_dir / "patchbay.yaml").read_text())
    data["consumers"]["bot"] = {"description": "no policy yet"}
    config = load_config_data(data, base_dir=demo_dir)
    async with Hub(config) as hub:
        with pytest.raises(AccessDenied, match="unknown consumer 'nobody'"):
            await all_of(hub, "contact", consumer="nobody")
        with pytest.raises(AccessDenied, match="no policy"):
            await all_of(hub, "contact", consumer="bot")
        with pytest.raises(AccessDenied):
            await hub.get("invoice", "erp:500002", consumer="bot")
        assert (await hub.fetch("contact", limit=1, consumer="local")).records


class Shipment(Record):
    entity = "shipment"
    carrier: str
    weight_kg: float | None = None


async def test_a_user_entity_registered_in_python(demo_dir: Path) -> None:
    shutil.copy(demo_dir / "erp.sqlite", demo_dir / "erp2.sqlite")
    entities = EntityRegistry()
    entities.register(Shipment)
    config = load_config_data(
        {
            "version": 1,
            "sources": {
                "erp": {
                    "connector": "sql",
                    "settings": {"url": "sqlite:///erp2.sqlite"},
                    "entities": {
                        "shipment": {
                            "from": {"query": "SELECT ORD_NO, 'DHL' AS CARRIER FROM ORDERS"},
                            "id": "ORD_NO",
                            "fields": {"carrier": "CARRIER"},
                        }
                    },
                }
            },
        },
        base_dir=demo_dir,
        entities=entities,
    )
    async with Hub(config) as hub:
        page = await hub.fetch("shipment", carrier="DHL", limit=3)
    assert [type(r) for r in page.records] == [Shipment] * 3
    assert "carrier" in entities.schema("shipment")["properties"]  # type: ignore[operator]


def test_sync_facade_in_a_plain_script(demo_dir: Path) -> None:
    with SyncHub.from_config(demo_dir / "patchbay.yaml") as hub:
        stream = hub.query("company", limit=3)
        names = [c.id for c in stream]
        assert names == ["erp:10001", "erp:10002", "erp:10003"]
        assert hub.get("product", "erp:AX-1001").id == "erp:AX-1001"


async def test_sync_facade_inside_a_running_loop(demo_dir: Path) -> None:
    # As in a notebook: an event loop is running in this thread, asyncio.run would refuse.
    asyncio.get_running_loop()
    hub = SyncHub.from_config(demo_dir / "patchbay.yaml")
    try:
        page = hub.fetch("invoice", status="paid", limit=2)
        assert len(page.records) == 2
        assert all(r.status == "paid" for r in page.records)  # type: ignore[attr-defined]
    finally:
        hub.close()
    hub.close()  # twice is fine


async def test_close_releases_connectors_and_engines(demo_dir: Path) -> None:
    hub = Hub.from_config(demo_dir / "patchbay.yaml")
    await all_of(hub, "contact")
    engine = (await hub.connector("erp")).engine  # type: ignore[attr-defined]
    await hub.close()
    assert hub._connectors == {}
    assert engine.pool.checkedout() == 0


async def test_quarantine_kept_in_postgresql(demo_dir: Path, postgres_url: str) -> None:
    data = yaml.safe_load((demo_dir / "patchbay.yaml").read_text())
    data["state"] = postgres_url
    config = load_config_data(data, base_dir=demo_dir)
    async with Hub(config) as hub:
        await all_of(hub, "invoice")
        await all_of(hub, "invoice")
        entries = hub.quarantine.list(source="erp", entity="invoice")
        assert sorted(e.remote_id or "" for e in entries) == ["500003", "500007", "500011"]
        assert {e.times_seen for e in entries} == {2}
        assert entries[0].first_seen.tzinfo is not None
        assert hub.quarantine.purge(entity="invoice") == 3
        assert hub.quarantine.count() == 0


async def test_rows_with_broken_encoding_are_quarantined_the_rest_delivered(
    tmp_path: Path,
) -> None:
    good = b"Contact ID;E-mail;Last Name\r\n1;a@x.example;Lee\r\n"
    bad = "2;b@x.example;Müller\r\n".encode("cp1252")  # not UTF-8, though declared so
    tail = b"3;c@x.example;Ng\r\n4;not-an-email;Ode\r\n"
    (tmp_path / "export.csv").write_bytes(good + bad + tail)
    config = load_config_data(
        {"version": 1, "sources": {"crm": {
            "connector": "files", "owner": "sales-ops@acme.example",
            "entities": {"contact": {
                "from": {"file": "export.csv", "encoding": "utf-8"},
                "id": "Contact ID",
                "fields": {"email": {"path": "E-mail", "transform": "email"},
                           "last_name": "Last Name"},
            }},
        }}},
        base_dir=tmp_path,
    )
    async with Hub(config) as hub:
        records, stream = await all_of(hub, "contact")
    assert [r.id for r in records] == ["crm:1", "crm:3", "crm:4"]
    assert records[2].email is None  # type: ignore[attr-defined]
    quality = stream.quality
    assert (quality.read, quality.delivered, quality.quarantined) == (4, 3, 1)
    assert quality.nulled == {"crm.email: not a valid email address": 1}
    [row] = quality.quarantined_rows
    assert row.remote_id == "2"
    assert row.reasons == ("export.csv line 3: invalid utf-8 bytes in column 'Last Name'",)
