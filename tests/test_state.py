"""patchbay's state database: Alembic migrations run by ``patchbay.state.upgrade``.

On SQLite and PostgreSQL: an empty database, the same database twice, two processes at once, and
a database whose tables were made by ``metadata.create_all`` before migrations existed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from patchbay import state
from patchbay.core.drift import baseline_table
from patchbay.core.quarantine import QuarantineStore, metadata, quarantine_table

TABLES = ["patchbay_credentials", "patchbay_quarantine", "patchbay_schema_baseline"]
GOVERNANCE = ["api_keys", "patchbay_audit"]  # migration 0003: the gateway's keys, the audit log


def _drop_all(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for name in [*TABLES, *GOVERNANCE, state.VERSION_TABLE]:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty state database (PostgreSQL: this session's schema, emptied first)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    _drop_all(engine)
    yield url
    _drop_all(engine)
    engine.dispose()


@pytest.fixture
def engines(url: str) -> Iterator[list[sa.Engine]]:
    """Fresh engines on the same database: one per 'process'."""
    made = [sa.create_engine(url) for _ in range(3)]
    yield made
    for engine in made:
        engine.dispose()


def _shape(engine: sa.Engine, table: str) -> dict[str, Any]:
    inspector = sa.inspect(engine)
    return {
        "columns": [
            (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
        ],
        "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
        "indexes": sorted(
            (i["name"], tuple(i["column_names"]), bool(i["unique"]))
            for i in inspector.get_indexes(table)
        ),
        "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
    }


def test_upgrade_creates_every_table_on_an_empty_database(engines: list[sa.Engine]) -> None:
    engine = engines[0]
    assert state.current(engine) is None
    state.upgrade(engine)
    assert state.current(engine) == state.HEAD
    assert {*TABLES, *GOVERNANCE} <= set(sa.inspect(engine).get_table_names())


def test_upgrade_twice_is_a_no_op(engines: list[sa.Engine]) -> None:
    first, second = engines[0], engines[1]
    state.upgrade(first)
    QuarantineStore(first)  # upgrades again through the store: already done
    before = {t: _shape(first, t) for t in TABLES}
    state.upgrade(second)  # a new engine: Alembic runs again and finds the schema at head
    assert state.current(second) == state.HEAD
    assert {t: _shape(second, t) for t in TABLES} == before


def test_migrated_tables_are_exactly_the_declared_ones(engines: list[sa.Engine]) -> None:
    engine = engines[0]
    metadata.create_all(engine, tables=[quarantine_table, baseline_table])
    declared = {t: _shape(engine, t) for t in TABLES[1:]}
    _drop_all(engine)
    state.upgrade(engines[1])
    assert {t: _shape(engine, t) for t in TABLES[1:]} == declared
    indexes = declared["patchbay_quarantine"]["indexes"]
    assert ("ix_patchbay_quarantine_source", ("source",), False) in indexes
    assert declared["patchbay_quarantine"]["unique"] == [("fingerprint",)]


@pytest.mark.parametrize("old", [["quarantine", "baseline"], ["quarantine"]])
def test_a_database_made_by_create_all_upgrades_and_keeps_its_rows(
    engines: list[sa.Engine], old: list[str]
) -> None:
    engine = engines[0]
    tables = {"quarantine": quarantine_table, "baseline": baseline_table}
    metadata.create_all(engine, tables=[tables[name] for name in old])  # patchbay 0.1
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            quarantine_table.insert().values(
                fingerprint="f" * 64,
                source="erp",
                entity="contact",
                remote_id="7",
                reasons='["bad email"]',
                raw="{}",
                first_seen=now,
                last_seen=now,
                times_seen=3,
            )
        )
    assert state.current(engine) is None

    state.upgrade(engines[1])

    assert state.current(engine) == state.HEAD
    assert set(TABLES) <= set(sa.inspect(engine).get_table_names())
    [entry] = QuarantineStore(engines[2]).list()
    assert (entry.source, entry.remote_id, entry.times_seen) == ("erp", "7", 3)


def test_processes_starting_at_once_upgrade_once(url: str, engines: list[sa.Engine]) -> None:
    # Real processes (in one process the upgrade is also serialised by a lock): each imports,
    # then waits for the same moment to start.
    script = (
        "import sys, time\n"
        "import sqlalchemy as sa\n"
        "from patchbay import state\n"
        "engine = sa.create_engine(sys.argv[1])\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "state.upgrade(engine)\n"
        "engine.dispose()\n"
    )
    at = str(time.time() + 3)
    processes = [
        subprocess.Popen(  # a fixed interpreter and script
            [sys.executable, "-c", script, url, at], stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=60)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, errors
    assert state.current(engines[0]) == state.HEAD
    with engines[0].connect() as conn:
        rows = conn.execute(sa.text(f"SELECT version_num FROM {state.VERSION_TABLE}")).all()
    assert rows == [(state.HEAD,)]


def test_the_migrations_ship_inside_the_package() -> None:
    assert (state.MIGRATIONS / "env.py").is_file()
    versions = sorted(p.name for p in (state.MIGRATIONS / "versions").glob("0*.py"))
    assert versions == ["0001_initial.py", "0002_credentials.py", "0003_audit.py"]
