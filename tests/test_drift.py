"""Schema drift: a legacy change is caught by `check` before it silently becomes nulls."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from patchbay import Hub
from patchbay.cli import app
from patchbay.config import load_config_data

runner = CliRunner()


def check(demo_dir: Path, *args: str) -> Any:
    return runner.invoke(app, ["--config", str(demo_dir / "patchbay.yaml"), "check", *args])


def retype_credit_limit(erp: Path) -> None:
    """CREDIT_LIM goes from TEXT to REAL, the way a migration script would do it in SQLite."""
    db = sqlite3.connect(erp)
    columns = [row[1] for row in db.execute("PRAGMA table_info(CUSTOMERS)")]
    kinds = {"CREDIT_LIM": "REAL", "CUST_NO": "INTEGER PRIMARY KEY"}
    decls = ", ".join(f"{c} {kinds.get(c, 'TEXT')}" for c in columns)
    db.executescript(f"""
        CREATE TABLE NEW_CUSTOMERS ({decls});
        INSERT INTO NEW_CUSTOMERS SELECT * FROM CUSTOMERS;
        DROP TABLE CUSTOMERS;
        ALTER TABLE NEW_CUSTOMERS RENAME TO CUSTOMERS;
    """)
    db.close()


def test_no_drift_on_an_unchanged_source(demo_dir: Path) -> None:
    first = check(demo_dir)
    assert first.exit_code == 0, first.output
    assert "schema drift" not in first.stdout
    assert check(demo_dir).exit_code == 0


def test_a_dropped_column_and_a_renamed_header_are_reported(demo_dir: Path) -> None:
    assert check(demo_dir).exit_code == 0  # records the baseline
    db = sqlite3.connect(demo_dir / "erp.sqlite")
    db.execute("ALTER TABLE CUSTOMERS DROP COLUMN EMAIL")
    db.commit()
    db.close()
    csv = demo_dir / "crm_contacts.csv"
    csv.write_bytes(csv.read_bytes().replace(b"E-mail", b"Email", 1))
    result = check(demo_dir)
    assert result.exit_code == 7, result.output
    out = result.stdout
    assert "sources.erp.entities.company.fields.email" in out
    assert "sources.erp.entities.contact.fields.email" in out
    assert "column 'EMAIL' is no longer in CUSTOMERS" in out
    assert "finance-systems@acme.example" in out
    assert "sources.crm.entities.contact.fields.email" in out
    assert "sales-ops@acme.example" in out


def test_a_type_change_is_reported_against_the_baseline(demo_dir: Path) -> None:
    assert check(demo_dir).exit_code == 0
    retype_credit_limit(demo_dir / "erp.sqlite")
    result = check(demo_dir)
    assert result.exit_code == 7, result.output
    assert "sources.erp.entities.company.fields.extra.credit_limit" in result.stdout
    assert "changed type from TEXT to REAL" in result.stdout
    # Accepting records the new schema: the next check is clean.
    accepted = check(demo_dir, "--accept-schema")
    assert accepted.exit_code == 0
    assert "recorded the current schema" in accepted.stderr
    assert check(demo_dir).exit_code == 0


def test_a_missing_table_is_reported(demo_dir: Path) -> None:
    db = sqlite3.connect(demo_dir / "erp.sqlite")
    db.execute("ALTER TABLE ITEMS RENAME TO ITEMS_OLD")
    db.commit()
    db.close()
    result = check(demo_dir)
    assert result.exit_code == 7
    assert "sources.erp.entities.product.id" in result.stdout
    assert "missing table" in result.stdout


def test_unreachable_sources_fail_check_before_drift(demo_dir: Path) -> None:
    (demo_dir / "erp.sqlite").unlink()
    result = check(demo_dir)
    assert result.exit_code == 3
    assert "failing" in result.stdout


async def test_type_drift_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text('CREATE TABLE "LEDGER" ("ID" integer primary key, "AMOUNT" text)'))
    data = {
        "version": 1,
        "state": f"sqlite:///{tmp_path / 'state.db'}",
        "sources": {"gl": {
            "connector": "sql", "owner": "ledger@acme.example", "settings": {"url": postgres_url},
            "entities": {"invoice": {"from": {"table": "LEDGER"}, "id": "ID",
                                     "fields": {"total": {"path": "AMOUNT",
                                                          "transform": "money:EUR"}}}},
        }},
    }
    config = load_config_data(data, base_dir=tmp_path)
    try:
        async with Hub(config) as hub:
            assert await hub.drift() == []
        with engine.begin() as conn:
            conn.execute(sa.text(
                'ALTER TABLE "LEDGER" ALTER COLUMN "AMOUNT" TYPE numeric USING "AMOUNT"::numeric'
            ))
        async with Hub(config) as hub:
            [finding] = await hub.drift()
        assert finding.source == "gl"
        assert finding.owner == "ledger@acme.example"
        assert finding.mapping_path == "sources.gl.entities.invoice.fields.total"
        assert finding.problem == "type changed"
        assert "from TEXT to NUMERIC" in finding.detail
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text('DROP TABLE IF EXISTS "LEDGER"'))
        engine.dispose()


def test_declared_queries_are_described_by_their_columns(demo_dir: Path) -> None:
    data = yaml.safe_load((demo_dir / "patchbay.yaml").read_text())
    data["sources"]["erp"]["entities"] = {"product": {
        "from": {"query": "SELECT ITEM_NO, DESCR FROM ITEMS"},
        "id": "ITEM_NO",
        "fields": {"name": "DESCR", "description": "LONG_DESCR"},
    }}
    del data["sources"]["crm"]
    (demo_dir / "patchbay.yaml").write_text(yaml.safe_dump(data))
    result = check(demo_dir)
    assert result.exit_code == 7
    assert "sources.erp.entities.product.fields.description" in result.stdout
    assert "column 'LONG_DESCR' is no longer in (declared query)" in result.stdout
