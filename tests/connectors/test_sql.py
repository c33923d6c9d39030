"""The SQL connector for real: SQLite (the demo file), PostgreSQL and MariaDB (the demo ERP copied).

Every test runs once per backend. The demo's ERP database is read through the demo config's ``erp``
source with only ``settings.url`` replaced; on PostgreSQL and MariaDB it is a copy made once per
session with :mod:`sqlcopy` (tables and columns keep their UPPER-CASE names). Next to it:

* ``plain`` and ``plain_b``: the same database mapped with plain paths (no transforms), so filters
  and sorting can go to the database; two of them to merge two sources;
* ``adhoc``: entities from declared ``SELECT`` statements;
* ``scratch``: a small ``BINS`` table with a composite text key holding ``/``, ``:`` and ``%``.

Expected values come from the database itself (queried with SQLAlchemy) and from the generator's
list of planted defects (``BROKEN``); push-down results are checked against the same query with
push-down switched off, which evaluates everything in memory.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import math
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
import yaml
from sqlcopy import copy_sqlite

from patchbay.config import load_config_data
from patchbay.connectors.sql import CASEFOLD_TO_ASCII, SqlConnector
from patchbay.core.connector import Batch, LinesRequest, ReadRequest, SourceOrder
from patchbay.core.entities import Record, RecordId
from patchbay.core.errors import (
    CursorError,
    QuarantinedRecord,
    QueryError,
    RecordNotFound,
    SourceError,
    SourceUnavailable,
)
from patchbay.core.mapping import LINES_KEY
from patchbay.core.registry import EntityRegistry
from patchbay.demo.generate import BROKEN, ERP_COLUMNS, DemoFiles
from patchbay.hub import Hub
from patchbay.testing import ConformanceCase, ConnectorConformance

ROOT = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((ROOT / "examples" / "patchbay.yaml").read_text(encoding="utf-8"))
ERP: dict[str, Any] = DEMO["sources"]["erp"]
OWNER: str = ERP["owner"]
SECRET_KEY = "sql-connector-tests-cursor-key-0123456789"
BACKENDS = (
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.services),
    pytest.param("mariadb", marks=pytest.mark.services),
)
ENTITIES = ("company", "contact", "product", "order", "invoice")


# --- entities of our own: order lines keyed by (order, line), bins keyed by (site, code) ------


class OrderLineRecord(Record):
    entity: ClassVar[str] = "order_line"

    order_id: RecordId | None = None
    line_no: int | None = None
    sku: str | None = None
    quantity: Decimal | None = None


class Bin(Record):
    entity: ClassVar[str] = "bin"

    site: str | None = None
    code: str | None = None
    label: str | None = None
    qty: int | None = None
    weight: Decimal | None = None


def registry() -> EntityRegistry:
    entities = EntityRegistry()
    entities.register(OrderLineRecord)
    entities.register(Bin)
    return entities


# SITE, CODE, LABEL, QTY, WEIGHT, SEEN: keys with the characters canonical ids must encode,
# labels with LIKE wildcards and SQL that must stay data, doubles that are and are not exact.
BINS_ROWS: list[tuple[str, str, str, int | None, float | None, str | None]] = [
    ("north", "A-1", "plain", 3, 0.5, "2024-01-05 10:00:00"),
    ("north", "a/b", "slash in the code", 5, 0.1, "2024-02-01 08:30:00"),
    ("east:2", "x:y", "colons: everywhere", 0, 2.25, "2024-02-15 23:59:59"),
    ("50%", "c_d", "50% off", None, 0.30000000000000004, "2024-03-01 00:00:00"),
    ("south", "under_score", "a_b", 7, None, None),
    ("west", "é/ü", "Straße", 2, 0.3, "2023-12-31 23:00:00"),
    ("west", "%2F", "looks encoded", 1, 1e-3, "2024-01-01 00:00:00"),
    ("inject", "1", "' OR 1=1 --", 4, 0.5, "2024-01-02 12:00:00"),
    ("inject", "2", '"; DROP TABLE x', 4, 7.0, "2024-01-02 12:00:00"),
]
INJECTIONS = ("' OR 1=1 --", '"; DROP TABLE x', "'; DROP TABLE \"ITEMS\"; --", "%", "_", "\\")


def write_scratch(path: Path) -> Path:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "CREATE TABLE BINS (SITE TEXT, CODE TEXT, LABEL TEXT, QTY INTEGER, WEIGHT REAL, "
            "SEEN DATETIME, PRIMARY KEY (SITE, CODE))"
        )
        conn.executemany("INSERT INTO BINS VALUES (?, ?, ?, ?, ?, ?)", BINS_ROWS)
        conn.commit()
    return path


# --- backends --------------------------------------------------------------------------------


@dataclass
class Backend:
    """One database holding the demo ERP (and the scratch table), plus direct access to it."""

    name: str
    settings: dict[str, Any]  # the ``settings:`` of a source reading the ERP
    scratch: dict[str, Any]  # the ``settings:`` of the source reading BINS
    engine: sa.Engine  # direct access, for expected values
    scratch_engine: sa.Engine
    down_url: str  # the same kind of database, where nothing listens

    def quote(self, name: str) -> str:
        return self.engine.dialect.identifier_preparer.quote_identifier(name)

    def rows(self, table: str, *columns: str, engine: sa.Engine | None = None
             ) -> list[tuple[Any, ...]]:
        t = sa.table(table, *(sa.column(c) for c in columns))
        with (engine or self.engine).connect() as conn:
            return [tuple(row) for row in conn.execute(sa.select(*t.c))]

    def count(self, table: str, engine: sa.Engine | None = None) -> int:
        with (engine or self.engine).connect() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(sa.table(table))
            ).scalar_one())

    def tables(self, engine: sa.Engine | None = None) -> set[str]:
        return set(sa.inspect(engine or self.engine).get_table_names())


@pytest.fixture(scope="session")
def scratch_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scratch(tmp_path_factory.mktemp("scratch") / "scratch.sqlite")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, demo_files: DemoFiles, scratch_file: Path
            ) -> Iterator[Backend]:
    name: str = request.param
    engines: list[sa.Engine] = []

    def engine(url: str) -> sa.Engine:
        engines.append(sa.create_engine(url))
        return engines[-1]

    if name == "sqlite":
        settings = {"url": f"sqlite:///{demo_files.erp}"}
        made = Backend(
            name, settings, {"url": f"sqlite:///{scratch_file}"},
            engine(f"sqlite:///file:{demo_files.erp}?mode=ro&uri=true"),
            engine(f"sqlite:///file:{scratch_file}?mode=ro&uri=true"),
            f"sqlite:///{demo_files.directory / 'missing' / 'erp.sqlite'}",
        )
    else:
        url = request.getfixturevalue("postgres_url" if name == "postgresql" else "mariadb_url")
        copied = copy_sqlite(demo_files.erp, url)
        assert set(copied) == set(ERP_COLUMNS)
        copy_sqlite(scratch_file, url)
        settings = {"url": url}
        direct = engine(url)
        down = ("postgresql+psycopg://patchbay@127.0.0.1:1/erp" if name == "postgresql"
                else "mysql+pymysql://patchbay@127.0.0.1:1/erp")
        made = Backend(name, settings, dict(settings), direct, direct, down)
    try:
        yield made
    finally:
        for e in engines:
            e.dispose()


# --- configs and hubs ------------------------------------------------------------------------


def plain_entities() -> dict[str, Any]:
    """The ERP mapped with plain paths only: every filter and sort can go to the database."""
    return {
        "company": {
            "from": {"table": "CUSTOMERS"},
            "id": "CUST_NO",
            "updated_at": "UPDATED_AT",
            "fields": {"name": "CUST_NAME", "email": "EMAIL", "address.city": "CITY"},
        },
        "product": {
            "from": {"table": "ITEMS"},
            "id": "ITEM_NO",
            "fields": {"sku": "ITEM_NO", "name": "DESCR", "description": "LONG_DESCR"},
        },
        "order_line": {
            "from": {"table": "ORD_LINES"},
            "id": ["ORD_NO", "LINE_NO"],
            "fields": {
                "order_id": {"path": "ORD_NO", "transform": "ref"},
                "line_no": "LINE_NO",
                "sku": "ITEM_NO",
                "quantity": {"path": "QTY", "transform": "decimal:dot"},
            },
        },
    }


def adhoc_entities(quote: Callable[[str], str]) -> dict[str, Any]:
    """Entities from declared queries, quoted for the backend (PostgreSQL folds unquoted names)."""
    q = quote
    lines = copy.deepcopy(ERP["entities"]["order"]["lines"])
    return {
        "product": {
            # The ':' literal must reach the database as text, not as a bind parameter.
            "from": {"query": f"SELECT {q('ITEM_NO')}, {q('DESCR')}, {q('LONG_DESCR')} "
                              f"FROM {q('ITEMS')} WHERE {q('DESCR')} <> 'no:such:item'"},
            "id": "ITEM_NO",
            "fields": {"sku": "ITEM_NO", "name": "DESCR", "description": "LONG_DESCR"},
        },
        "order": {
            "from": {"query": f"SELECT {q('ORD_NO')}, {q('CUST_NO')}, {q('ORD_DATE')} "
                              f"FROM {q('ORDERS')}"},
            "id": "ORD_NO",
            "fields": {
                "customer_id": {"path": "CUST_NO", "transform": "ref"},
                "ordered_at": {"path": "ORD_DATE", "transform": "date:%d/%m/%Y"},
            },
            "lines": lines,
        },
    }


def config_data(backend: Backend, state_dir: Path, *, erp_batch_size: int | None = None,
                down: dict[str, Any] | None = None) -> dict[str, Any]:
    erp = copy.deepcopy(ERP)
    erp["settings"] = copy.deepcopy(backend.settings)
    if erp_batch_size is not None:
        erp["batch_size"] = erp_batch_size

    def plain() -> dict[str, Any]:
        return {"connector": "sql", "owner": OWNER, "settings": copy.deepcopy(backend.settings),
                "entities": plain_entities()}

    sources: dict[str, Any] = {
        "erp": erp,
        "plain": plain(),
        "plain_b": plain(),
        "adhoc": {"connector": "sql", "owner": OWNER, "settings": copy.deepcopy(backend.settings),
                  "entities": adhoc_entities(backend.quote)},
        "scratch": {
            "connector": "sql",
            "owner": OWNER,
            "settings": copy.deepcopy(backend.scratch),
            "entities": {
                "bin": {
                    "from": {"table": "BINS"},
                    "id": ["SITE", "CODE"],
                    "updated_at": "SEEN",
                    "fields": {"site": "SITE", "code": "CODE", "label": "LABEL", "qty": "QTY",
                               "weight": "WEIGHT"},
                }
            },
        },
    }
    if down is not None:
        sources["down"] = down
    return {"version": 1, "state": f"sqlite:///{state_dir / 'state.db'}",
            "secret_key": SECRET_KEY, "sources": sources}


MakeHub = Callable[..., Hub]


@pytest.fixture
async def make_hub(backend: Backend, tmp_path: Path) -> AsyncIterator[MakeHub]:
    hubs: list[Hub] = []

    def make(*, pushdown: bool = True, **options: Any) -> Hub:
        data = config_data(backend, tmp_path, **options)
        hub = Hub(load_config_data(data, base_dir=tmp_path, entities=registry()),
                  pushdown=pushdown)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        await hub.close()


async def read_all(hub: Hub, entity: str, **query: Any) -> list[Record]:
    return [record async for record in hub.query(entity, **query)]


# --- what the generator planted, seen through the demo config --------------------------------


def _columns(fields: dict[str, Any], required: frozenset[str]) -> dict[str, tuple[str, bool]]:
    """Source column -> (canonical field, required) for a ``fields:`` block.

    Of a path list only the first column holds the value (``[TOTAL, CURRENCY]``,
    ``[PHONE, COUNTRY]``); the others qualify it, so a bad COUNTRY nulls address.country, not
    the phone (which falls back to the source's region)."""
    out: dict[str, tuple[str, bool]] = {}
    for target, entry in fields.items():
        spec = {"path": entry} if isinstance(entry, str) else entry
        path = spec["path"][0] if isinstance(spec["path"], list) else spec["path"]
        out[path] = (target, bool(spec.get("required")) or target in required)
    return out


@dataclass(frozen=True)
class Planted:
    table: str
    lines_table: str | None
    quarantined: dict[str, list[str]]  # remote id -> fields whose reasons must be named
    nulled: Counter[str]  # canonical field -> rows nulled


def planted(entity: str) -> Planted:
    spec = ERP["entities"][entity]
    model = registry().get(entity)
    header = _columns(spec["fields"], model.required)
    if "updated_at" in spec:
        header |= _columns({"updated_at": spec["updated_at"]}, frozenset())
    lines_table = spec["lines"]["from"]["table"] if "lines" in spec else None
    lines = _columns(spec["lines"]["fields"], frozenset()) if "lines" in spec else {}
    quarantined: dict[str, list[str]] = {}
    nulled: Counter[str] = Counter()
    for row in BROKEN.rows:
        if row.table == spec["from"]["table"] and row.column in header:
            target, required = header[row.column]
        elif row.table == lines_table and row.column in lines:
            target, required = lines[row.column]
        else:
            continue
        if row.outcome == "quarantine" and required:
            quarantined.setdefault(str(row.key[0]), []).append(target)
        elif row.outcome == "null":
            nulled[target] += 1
    return Planted(spec["from"]["table"], lines_table, quarantined, nulled)


def nulled_by_field(nulled: Counter[str], source: str) -> Counter[str]:
    """``{"erp.phone: not a phone number": 2}`` -> ``{"phone": 2}``."""
    out: Counter[str] = Counter()
    for key, count in nulled.items():
        out[key.removeprefix(f"{source}.").split(": ", 1)[0]] += count
    return out


# === 1. reading every entity ================================================================


@pytest.mark.parametrize("entity", ENTITIES)
async def test_read_all_rows_delivered_or_quarantined(backend: Backend, make_hub: MakeHub,
                                                      entity: str) -> None:
    hub = make_hub()
    expected = planted(entity)
    rows = backend.count(expected.table)
    stream = hub.query(entity, sources=["erp"])
    records = [record async for record in stream]
    quality = stream.quality

    assert quality.read == rows
    assert quality.delivered == len(records)
    assert quality.delivered + quality.quarantined == rows
    # Every row but the quarantined ones, once, in key order.
    keys = sorted(k for (k,) in backend.rows(expected.table, ERP["entities"][entity]["id"]))
    assert [r.remote_id for r in records] == [
        str(k) for k in keys if str(k) not in expected.quarantined]
    assert {q.remote_id for q in quality.quarantined_rows} == set(expected.quarantined)
    for row in quality.quarantined_rows:
        assert row.source == "erp"
        for target in expected.quarantined[str(row.remote_id)]:
            assert any(target in reason for reason in row.reasons), (target, row.reasons)
    assert nulled_by_field(quality.nulled, "erp") == expected.nulled

    if expected.lines_table is not None:
        key = ERP["entities"][entity]["lines"]["key"]
        per_header = Counter(str(k) for (k,) in backend.rows(expected.lines_table, key))
        for record in records:
            assert len(record.lines) == per_header.get(record.remote_id, 0), record.id
        quarantined_lines = sum(per_header[rid] for rid in expected.quarantined)
        assert (sum(len(r.lines) for r in records) + quarantined_lines
                == backend.count(expected.lines_table))


async def test_read_values_match_the_database(backend: Backend, make_hub: MakeHub) -> None:
    hub = make_hub()
    products = {r.remote_id: r for r in await read_all(hub, "product", sources=["plain"])}
    stored = backend.rows("ITEMS", "ITEM_NO", "DESCR", "LONG_DESCR")
    assert set(products) == {item for item, _, _ in stored}
    for item, descr, long_descr in stored:
        record = products[item]
        assert (record.sku, record.name) == (item, descr)
        assert record.description == (long_descr if long_descr and long_descr.strip() else None)


# === 2. paging with cursors ==================================================================


@pytest.mark.parametrize("limit", [1, 7, 50])
@pytest.mark.parametrize("entity", ["company", "invoice"])
async def test_pages_concatenate_to_one_full_read(backend: Backend, make_hub: MakeHub,
                                                  entity: str, limit: int) -> None:
    hub = make_hub()
    full = await read_all(hub, entity, sources=["erp"])
    pages: list[Record] = []
    cursor: str | None = None
    fetches = 0
    while True:
        page = await hub.fetch(entity, sources=["erp"], limit=limit, cursor=cursor)
        fetches += 1
        assert len(page.records) <= limit
        pages.extend(page.records)
        cursor = page.next_cursor
        if cursor is None:
            break
        assert len(page.records) == limit
    assert [r.id for r in pages] == [r.id for r in full]
    assert pages == full
    assert fetches == max(1, math.ceil(len(full) / limit))


async def test_pages_of_a_merge_over_two_sources(backend: Backend, make_hub: MakeHub) -> None:
    hub = make_hub()
    query = {"sources": ["plain", "plain_b"], "order_by": "-name", "name__contains": "o"}
    full = await read_all(hub, "company", **query)
    assert full
    pages: list[Record] = []
    cursor: str | None = None
    while True:
        page = await hub.fetch("company", limit=7, cursor=cursor, **query)
        pages.extend(page.records)
        if (cursor := page.next_cursor) is None:
            break
    assert [r.id for r in pages] == [r.id for r in full]


async def test_tampered_or_foreign_cursor_is_refused(backend: Backend, make_hub: MakeHub) -> None:
    hub = make_hub()
    page = await hub.fetch("company", sources=["erp"], limit=5)
    cursor = page.next_cursor
    assert cursor is not None
    middle = len(cursor) // 2
    tampered = cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1:]
    for bad in (tampered, cursor[:-3], "not a cursor", "é"):
        with pytest.raises(CursorError):
            await hub.fetch("company", sources=["erp"], limit=5, cursor=bad)
    with pytest.raises(CursorError, match="different query"):
        await hub.fetch("company", sources=["erp"], limit=5, cursor=cursor, status="active")
    with pytest.raises(CursorError, match="different query"):
        await hub.fetch("contact", sources=["erp"], limit=5, cursor=cursor)
    again = await hub.fetch("company", sources=["erp"], limit=5, cursor=cursor)
    assert [r.id for r in again.records] != [r.id for r in page.records]


# === 3. push-down changes nothing but the scan ==============================================


@dataclass(frozen=True)
class Sample:
    """Filter values taken from the data, so every case matches something worth checking."""

    messy_name: str  # a company name with outer or doubled whitespace
    names: list[str]
    sku: str
    email: str  # the planted messy e-mail, as the mapping cleans it
    customer: int
    order: int
    max_line: int
    seen_mid: str


@pytest.fixture(scope="session")
def sample(backend: Backend) -> Sample:
    names = sorted(n for (n,) in backend.rows("CUSTOMERS", "CUST_NAME") if n and n.strip())
    messy = next(n for n in names if n != " ".join(n.split()))
    skus = sorted(s for (s,) in backend.rows("ITEMS", "ITEM_NO"))
    email = next(p.expected for p in BROKEN.messy
                 if p.table == "CUSTOMERS" and p.column == "EMAIL" and p.expected)
    customers = sorted(c for (c,) in backend.rows("CUSTOMERS", "CUST_NO"))
    orders = sorted(o for (o,) in backend.rows("ORDERS", "ORD_NO"))
    lines = [n for (n,) in backend.rows("ORD_LINES", "LINE_NO")]
    seen = sorted(row[-1] for row in BINS_ROWS if row[-1])
    return Sample(messy, names, skus[len(skus) // 2], email, customers[0], orders[0],
                  max(lines), seen[len(seen) // 2].replace(" ", "T") + "+00:00")


Pushed = set[tuple[str, str]]
PushCase = tuple[str, list[str], dict[str, Any], Pushed]


def push_cases(s: Sample) -> list[PushCase]:
    plain = ["plain"]
    name = s.messy_name
    line = s.max_line // 2 or 1
    return [
        # plain text column: every operator, with values that differ only by case or accents
        ("company", plain, {"name": name}, {("CUST_NAME", "eq")}),
        ("company", plain, {"name": name.upper()}, {("CUST_NAME", "eq")}),
        ("company", plain, {"name__ne": name}, {("CUST_NAME", "ne")}),
        ("company", plain, {"name__ne": name.lower()}, {("CUST_NAME", "ne")}),
        ("company", plain, {"name__in": [name, name.lower(), s.names[0]]}, {("CUST_NAME", "in")}),
        ("company", plain, {"name__gt": "m"}, {("CUST_NAME", "gt")}),
        ("company", plain, {"name__gte": "M"}, {("CUST_NAME", "gte")}),
        ("company", plain, {"name__lt": "b"}, {("CUST_NAME", "lt")}),
        ("company", plain, {"name__lte": "Z"}, {("CUST_NAME", "lte")}),
        ("company", plain, {"name__gt": "Ångström"}, {("CUST_NAME", "gt")}),
        ("company", plain, {"name__lt": name + " "}, {("CUST_NAME", "lt")}),
        ("company", plain, {"name__contains": "weiss"}, {("CUST_NAME", "contains")}),
        ("company", plain, {"name__contains": "LTD"}, {("CUST_NAME", "contains")}),
        ("company", plain, {"name__contains": "  "}, {("CUST_NAME", "contains")}),
        ("company", plain, {"name__contains": "ström"}, set()),  # not ASCII: memory only
        ("company", plain, {"address__city__isnull": False}, {("CITY", "isnull")}),
        # e-mail: cleaned by the implicit transform, so only a folded substring goes down
        ("company", plain, {"email": s.email.upper()}, {("EMAIL", "contains")}),
        ("company", plain, {"email__contains": "KESSLER"}, {("EMAIL", "contains")}),
        ("company", plain, {"email__isnull": True}, set()),
        # ids and references
        ("company", plain, {"id": f"plain:{s.customer}"}, {("CUST_NO", "eq")}),
        ("company", plain, {"id__in": [f"plain:{s.customer}", f"erp:{s.customer + 1}",
                                       f"plain:{s.customer + 2}"]}, {("CUST_NO", "in")}),
        ("company", plain, {"id": "plain:abc"}, set()),  # never an INTEGER key
        ("company", plain, {"id__ne": f"plain:{s.customer}"}, set()),
        ("order", ["erp"], {"customer_id": f"erp:{s.customer}"}, {("CUST_NO", "eq")}),
        ("order_line", plain, {"order_id": f"plain:{s.order}"}, {("ORD_NO", "eq")}),
        ("order_line", plain, {"order_id__in": f"plain:{s.order},plain:{s.order + 1}"},
         {("ORD_NO", "in")}),
        # numbers
        ("order_line", plain, {"line_no": line}, {("LINE_NO", "eq")}),
        ("order_line", plain, {"line_no__ne": line}, {("LINE_NO", "ne")}),
        ("order_line", plain, {"line_no__in": [1, line]}, {("LINE_NO", "in")}),
        ("order_line", plain, {"line_no__gt": line}, {("LINE_NO", "gt")}),
        ("order_line", plain, {"line_no__gte": line}, {("LINE_NO", "gte")}),
        ("order_line", plain, {"line_no__lt": line}, {("LINE_NO", "lt")}),
        ("order_line", plain, {"line_no__lte": "2.0"}, {("LINE_NO", "lte")}),
        ("order_line", plain, {"line_no__gt": "1.5"}, set()),  # no INTEGER equals 1.5
        ("order_line", plain, {"quantity__gte": 10}, set()),  # QTY is text: memory only
        ("order_line", plain, {"line_no__gt": 1, "sku__lt": s.sku}, {("LINE_NO", "gt"),
                                                                     ("ITEM_NO", "lt")}),
        # text keys, with case variants
        ("product", plain, {"sku": s.sku}, {("ITEM_NO", "eq")}),
        ("product", plain, {"sku": s.sku.lower()}, {("ITEM_NO", "eq")}),
        ("product", plain, {"sku__ne": s.sku.lower()}, {("ITEM_NO", "ne")}),
        ("product", plain, {"sku__lt": s.sku.lower()}, {("ITEM_NO", "lt")}),
        ("product", plain, {"sku__gte": s.sku.lower()}, {("ITEM_NO", "gte")}),
        ("product", plain, {"sku__in": [s.sku, s.sku.lower()]}, {("ITEM_NO", "in")}),
        ("product", plain, {"description__isnull": False}, {("LONG_DESCR", "isnull")}),
        ("product", plain, {"name__contains": "ø40"}, set()),
        ("product", plain, {"name__contains": "BALL"}, {("DESCR", "contains")}),
        # declared queries: no types, so nothing is pushed
        ("product", ["adhoc"], {"sku": s.sku}, set()),
        ("product", ["adhoc"], {"name__contains": "ball"}, set()),
        # time: SEEN is a real DATETIME column, UPDATED_AT is text
        ("bin", ["scratch"], {"updated_at__gte": s.seen_mid}, {("SEEN", "gte")}),
        ("bin", ["scratch"], {"updated_at__lt": s.seen_mid}, {("SEEN", "lte")}),
        ("bin", ["scratch"], {"updated_at__isnull": False}, {("SEEN", "isnull")}),
        ("bin", ["scratch"], {"qty__gt": 2, "site": "north"}, {("QTY", "gt"), ("SITE", "eq")}),
        ("bin", ["scratch"], {"label__contains": "%"}, {("LABEL", "contains")}),
        ("bin", ["scratch"], {"label__contains": "_"}, {("LABEL", "contains")}),
        ("bin", ["scratch"], {"label__contains": "SS"}, {("LABEL", "contains")}),
        ("company", plain, {"updated_at__gte": "2020-01-01"}, set()),
        # doubles: only numbers a double holds exactly as written go to the database
        ("bin", ["scratch"], {"weight__gte": "0.5"}, {("WEIGHT", "gte")}),
        ("bin", ["scratch"], {"weight__gt": "2.25"}, {("WEIGHT", "gt")}),
        ("bin", ["scratch"], {"weight": 7}, {("WEIGHT", "eq")}),
        ("bin", ["scratch"], {"weight__gt": "0.1"}, set()),
        ("bin", ["scratch"], {"weight": "0.3"}, set()),
        ("bin", ["scratch"], {"weight__lte": "0.30000000000000004"}, set()),
        ("bin", ["scratch"], {"weight__in": ["0.5", "0.1"]}, set()),
    ]


def _pushed(explained: dict[str, Any], source: str) -> Pushed:
    [entry] = [s for s in explained["sources"] if s["source"] == source]
    return {(f["path"], f["op"]) for f in entry["pushed_down"]}


async def test_pushdown_on_and_off_agree(backend: Backend, make_hub: MakeHub,
                                         sample: Sample) -> None:
    on, off = make_hub(), make_hub(pushdown=False)
    matched = 0
    for entity, sources, where, pushed in push_cases(sample):
        case = (entity, sources, where)
        with_pushdown = await read_all(on, entity, sources=sources, **where)
        in_memory = await read_all(off, entity, sources=sources, **where)
        assert [r.id for r in with_pushdown] == [r.id for r in in_memory], case
        assert with_pushdown == in_memory, case
        matched += bool(in_memory)
        assert _pushed(await on.explain(entity, **where), sources[0]) == pushed, case
        assert _pushed(await off.explain(entity, **where), sources[0]) == set(), case
    assert matched >= len(push_cases(sample)) * 2 // 3  # most cases match something


async def test_since_pushed_where_the_column_is_a_timestamp(backend: Backend, make_hub: MakeHub,
                                                           sample: Sample) -> None:
    on, off = make_hub(), make_hub(pushdown=False)
    for since in (sample.seen_mid, "2024-01-05T10:00:00+00:00", "2024-01-05T11:00:00+01:00"):
        assert (await read_all(on, "bin", since=since)
                == await read_all(off, "bin", since=since))
    explained = await on.explain("bin", since=sample.seen_mid)
    assert _pushed(explained, "scratch") == {("SEEN", "gte")}
    recent = await read_all(on, "company", sources=["erp"], since="2021-06-01")
    assert recent == await read_all(off, "company", sources=["erp"], since="2021-06-01")
    assert 0 < len(recent) < backend.count("CUSTOMERS")
    assert _pushed(await on.explain("company", since="2021-06-01"), "erp") == set()


async def test_reference_to_another_source_reads_nothing(backend: Backend,
                                                         make_hub: MakeHub) -> None:
    hub = make_hub()
    statements = _Statements((await hub.connector("erp")).engine)
    with statements:
        page = await hub.fetch("order", sources=["erp"], customer_id="plain:10001")
    assert page.records == []
    assert page.quality.read == 0
    assert statements.seen == []
    explained = await hub.explain("order", customer_id="plain:10001")
    [erp] = [s for s in explained["sources"] if s["source"] == "erp"]
    assert erp["read"] is False
    assert "erp" in erp["excluded_because"]


@pytest.mark.parametrize(("order_by", "field", "entity", "sources"), [
    ("sku", "sku", "product", ["erp", "plain"]),
    ("-sku", "sku", "product", ["erp", "plain"]),
    ("name", "name", "company", ["plain", "plain_b"]),
    ("-name", "name", "company", ["plain", "plain_b"]),
    ("-line_no", "line_no", "order_line", ["plain", "plain_b"]),
    ("label", "label", "bin", ["scratch"]),
])
async def test_order_by_merges_two_sources(backend: Backend, make_hub: MakeHub, order_by: str,
                                           field: str, entity: str, sources: list[str]) -> None:
    on, off = make_hub(), make_hub(pushdown=False)
    merged = await read_all(on, entity, sources=sources, order_by=order_by)
    values = [getattr(r, field) for r in merged]
    assert values == sorted(values, reverse=order_by.startswith("-"))
    each = [await read_all(on, entity, sources=[s]) for s in sources]
    assert sorted(r.id for r in merged) == sorted(r.id for part in each for r in part)
    assert merged == await read_all(off, entity, sources=sources, order_by=order_by)
    described = (await on.plan(entity, order_by=order_by, sources=sources)).describe()
    assert [s["source"] for s in described["sources"]] == sources
    for entry in described["sources"]:
        [order] = entry["order"]
        assert order["descending"] is order_by.startswith("-")


async def test_order_by_on_a_declared_query_is_an_explicit_error(make_hub: MakeHub) -> None:
    hub = make_hub()
    with pytest.raises(QueryError, match="adhoc"):
        await read_all(hub, "product", sources=["plain", "adhoc"], order_by="sku")


async def test_casefold_table_is_complete() -> None:
    expected = {c: c.casefold() for c in map(chr, range(0x80, sys.maxunicode + 1))
                if any(f.isascii() for f in c.casefold())}
    assert dict(CASEFOLD_TO_ASCII) == expected


# --- hub bugs found along the way (fixed there; kept as regression tests) ------------------


async def test_isnull_true_on_a_plain_text_path(backend: Backend, make_hub: MakeHub) -> None:
    on, off = make_hub(), make_hub(pushdown=False)
    query = {"sources": ["plain"], "description__isnull": True}
    assert await read_all(on, "product", **query) == await read_all(off, "product", **query)


async def test_order_by_a_field_with_blank_values(backend: Backend, make_hub: MakeHub) -> None:
    hub = make_hub()
    merged = await read_all(hub, "product", sources=["plain", "plain_b"], order_by="description")
    values = [r.description for r in merged]
    present = sorted(v for v in values if v is not None)
    assert values == present + [None] * (len(values) - len(present))


@pytest.mark.services
async def test_postgres_url_options_are_kept(postgres_url: str, tmp_path: Path) -> None:
    data = {"version": 1, "state": f"sqlite:///{tmp_path / 'state.db'}", "secret_key": SECRET_KEY,
            "sources": {"pg": {"connector": "sql", "settings": {"url": postgres_url},
                               "entities": {}}}}
    async with Hub(load_config_data(data, base_dir=tmp_path)) as hub:
        engine = (await hub.connector("pg")).engine
        with engine.connect() as conn:
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
        assert postgres_url.endswith(f"search_path%3D{schema}")


async def test_sqlite_ignores_a_password(demo_files: DemoFiles, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PB_TEST_SQLITE_PASSWORD", "unused")
    settings = {"url": f"sqlite:///{demo_files.erp}", "password": "env:PB_TEST_SQLITE_PASSWORD"}
    data = {"version": 1, "state": f"sqlite:///{tmp_path / 'state.db'}", "secret_key": SECRET_KEY,
            "sources": {"erp": {**copy.deepcopy(ERP), "settings": settings}}}
    async with Hub(load_config_data(data, base_dir=tmp_path)) as hub:
        assert await hub.check(["erp"]) == {"erp": None}


# === 4. filter values are data ===============================================================


async def test_sql_in_filter_values_is_data(backend: Backend, make_hub: MakeHub) -> None:
    on, off = make_hub(), make_hub(pushdown=False)
    tables = backend.tables()
    counts = {t: backend.count(t) for t in ERP_COLUMNS}
    labels = [row[2] for row in BINS_ROWS]
    for value in INJECTIONS:
        assert await read_all(on, "product", sources=["plain"], sku=value) == []
        assert await read_all(on, "company", sources=["plain"], name__in=[value, "x"]) == []
        assert await read_all(on, "company", sources=["plain"], name__gt=value) == \
            await read_all(off, "company", sources=["plain"], name__gt=value)
        found = await read_all(on, "company", sources=["plain"], name__contains=value)
        assert found == await read_all(off, "company", sources=["plain"], name__contains=value)
        assert all(value.casefold() in (r.name or "").casefold() for r in found)
        bins = await read_all(on, "bin", label=value)
        assert [b.label for b in bins] == [label for label in labels if label == value]
        contains = await read_all(on, "bin", label__contains=value)
        assert sorted(b.label or "" for b in contains) == sorted(
            label for label in labels if value.casefold() in label.casefold())
        with pytest.raises(RecordNotFound):
            await on.get("product", f"plain:{value}")
        assert await read_all(on, "product", sources=["plain"], id=f"plain:{value}") == []
    assert [b.label for b in await read_all(on, "bin", label__contains="%")] == ["50% off"]
    assert [b.label for b in await read_all(on, "bin", label__contains="_")] == ["a_b"]
    assert backend.tables() == tables
    assert {t: backend.count(t) for t in ERP_COLUMNS} == counts


# === 5. lines per batch, not per header =====================================================


class _Statements:
    """Collects the SQL an engine executes while active (a ``before_cursor_execute`` listener)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.seen: list[str] = []

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(statement)

    def __enter__(self) -> _Statements:
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)


async def test_lines_are_fetched_per_batch(backend: Backend, make_hub: MakeHub) -> None:
    batch = 50
    hub = make_hub(erp_batch_size=batch)
    connector = await hub.connector("erp")
    assert isinstance(connector, SqlConnector)
    await hub.fetch("invoice", sources=["erp"], limit=1)  # reflection happens once, here
    headers = backend.count("INV_HDR")
    lines_table = f"FROM {backend.quote('INV_LINES')}"
    with _Statements(connector.engine) as statements:
        records = await read_all(hub, "invoice", sources=["erp"])
    line_queries = [s for s in statements.seen if lines_table in s]
    assert len(records) == headers - len(planted("invoice").quarantined)
    assert len(line_queries) == math.ceil(headers / batch)
    assert len(statements.seen) == len(line_queries) + 1  # plus the one header query

    with _Statements(connector.engine) as statements:
        record = await hub.get("invoice", records[0].id)
    assert record.lines
    assert len(statements.seen) == 2


# === 6. streaming: batch sizes, resuming ====================================================


def _invoice_request(batch_size: int, **changes: Any) -> ReadRequest:
    request = ReadRequest(
        entity="invoice",
        origin={"table": "INV_HDR"},
        id_paths=("INV_NO",),
        paths=("INV_NO", "CUST_NO", "TOTAL"),
        batch_size=batch_size,
        lines=LinesRequest(origin={"table": "INV_LINES"}, key=("INV_NO",),
                           paths=("LINE_NO", "QTY"), order_by=("LINE_NO",)),
    )
    return dataclasses.replace(request, **changes)


async def _batches(connector: SqlConnector, request: ReadRequest) -> list[Batch]:
    return [batch async for batch in connector.read(request)]


def _flat(batches: list[Batch]) -> list[dict[str, Any]]:
    return [dict(row) for batch in batches for row in batch.rows]


async def test_batches_respect_batch_size_and_resume_exactly(backend: Backend,
                                                             make_hub: MakeHub) -> None:
    hub = make_hub()
    connector = await hub.connector("erp")
    assert isinstance(connector, SqlConnector)
    rows_in_table = backend.count("INV_HDR")
    batches = await _batches(connector, _invoice_request(7))
    sizes = [len(b.rows) for b in batches]
    assert sum(sizes) == rows_in_table
    assert all(size == 7 for size in sizes[:-1]) and 1 <= sizes[-1] <= 7
    rows = _flat(batches)
    assert [r["INV_NO"] for r in rows] == sorted(r["INV_NO"] for r in rows)
    per_header = Counter(k for (k,) in backend.rows("INV_LINES", "INV_NO"))
    assert all(len(r[LINES_KEY]) == per_header[r["INV_NO"]] for r in rows)
    for b, i in [(0, 0), (0, 6), (5, 3), (len(batches) - 1, sizes[-1] - 1)]:
        position = hub.signer.load(hub.signer.dump("q", {"erp": batches[b].position_after(i)}),
                                   "q")["erp"]  # through a cursor, as the Hub stores it
        rest = _flat(await _batches(connector, _invoice_request(7, position=position)))
        assert rest == rows[b * 7 + i + 1:]


@pytest.mark.parametrize("descending", [False, True])
async def test_resume_on_a_nullable_text_order(backend: Backend, make_hub: MakeHub,
                                               descending: bool) -> None:
    hub = make_hub()
    connector = await hub.connector("erp")
    assert isinstance(connector, SqlConnector)
    request = ReadRequest(entity="product", origin={"table": "ITEMS"}, id_paths=("ITEM_NO",),
                          paths=("ITEM_NO", "LONG_DESCR"), batch_size=4,
                          order=(SourceOrder("LONG_DESCR", descending),))
    batches = await _batches(connector, request)
    rows = _flat(batches)
    stored = backend.rows("ITEMS", "ITEM_NO", "LONG_DESCR")
    # The requested order, then the id ascending (the tie-breaker), NULLs last.
    by_id = [(d, i) for i, d in sorted(stored)]
    present = sorted((p for p in by_id if p[0] is not None), key=lambda p: p[0],
                     reverse=descending)
    nulls = [p for p in by_id if p[0] is None]
    assert [(r["LONG_DESCR"], r["ITEM_NO"]) for r in rows] == present + nulls
    for index in range(len(rows)):
        b, i = divmod(index, 4)
        position = batches[b].position_after(i)
        rest = _flat(await _batches(connector, dataclasses.replace(request, position=position)))
        assert rest == rows[index + 1:], index


async def test_closing_a_read_early_returns_its_connections(make_hub: MakeHub) -> None:
    hub = make_hub()
    connector = await hub.connector("erp")
    assert isinstance(connector, SqlConnector)
    reader = connector.read(_invoice_request(3))
    first = await reader.__anext__()
    assert len(first.rows) == 3
    await reader.aclose()
    assert connector.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("batches_read", [1, 4])
async def test_a_read_cancelled_while_it_closes_still_returns_its_connections(
        backend: Backend, make_hub: MakeHub, batches_read: int) -> None:
    """A caller cancelled while a read is closing (a Hub stopping a source's prefetch just as
    the read ends after the last batch a page needs) waits for the close, then is cancelled.

    Regression: the close was handed to a worker thread with ``asyncio.to_thread``; cancelling
    that before the thread picked it up dropped it, so the server-side cursor and connections
    stayed open until the garbage collector found them (psycopg's ResourceWarnings, and a
    connection idle in transaction that kept DROP SCHEMA waiting). After one batch the read
    closes its stream; after four, its reader thread must also be finished first. (SQLite
    reads and closes in place, without a thread: its close is over before a cancel can come.)
    """
    hub = make_hub()
    connector = await hub.connector("erp")
    assert isinstance(connector, SqlConnector)
    reader = connector.read(_invoice_request(3))
    for _ in range(batches_read):
        assert len((await reader.__anext__()).rows) == 3
    closing = asyncio.ensure_future(reader.aclose())
    await asyncio.sleep(0)  # aclose runs until it waits for the worker thread
    if backend.name == "sqlite":
        assert closing.done()
    else:
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
    assert connector.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


# === 7. composite ids ========================================================================


async def test_composite_ids_of_order_lines(backend: Backend, make_hub: MakeHub) -> None:
    hub = make_hub()
    lines = await read_all(hub, "order_line", sources=["plain"])
    stored = backend.rows("ORD_LINES", "ORD_NO", "LINE_NO", "ITEM_NO")
    assert sorted(r.id for r in lines) == sorted(f"plain:{o}/{n}" for o, n, _ in stored)
    for record in lines[:3] + lines[-3:]:
        order, line = record.remote_id.split("/")
        assert record.order_id == f"plain:{order}" and record.line_no == int(line)
        assert await hub.get("order_line", record.id) == record
    with pytest.raises(RecordNotFound):
        await hub.get("order_line", lines[0].id.split("/")[0])  # one part of two
    with pytest.raises(RecordNotFound):
        await hub.get("order_line", lines[0].id + "/1")


async def test_composite_text_ids_are_encoded_and_round_trip(make_hub: MakeHub) -> None:
    hub = make_hub()
    bins = await read_all(hub, "bin")
    ids = {(b.site, b.code): b.id for b in bins}
    assert len(bins) == len(BINS_ROWS)
    assert ids["north", "a/b"] == "scratch:north/a%2Fb"
    assert ids["east:2", "x:y"] == "scratch:east%3A2/x%3Ay"
    assert ids["50%", "c_d"] == "scratch:50%25/c_d"
    assert ids["west", "%2F"] == "scratch:west/%252F"
    assert ids["west", "é/ü"] == "scratch:west/%C3%A9%2F%C3%BC"
    assert ids["north", "A-1"] == "scratch:north/A-1"
    for record in bins:
        assert await hub.get("bin", record.id) == record
        assert await read_all(hub, "bin", id=record.id) == [record]
    with pytest.raises(RecordNotFound):
        await hub.get("bin", "scratch:north/a/b")  # unencoded: three parts


# === 8. get ==================================================================================


async def test_get_found_not_found_and_quarantined(backend: Backend, make_hub: MakeHub) -> None:
    hub = make_hub()
    bad = planted("invoice").quarantined
    invoices = sorted(i for (i,) in backend.rows("INV_HDR", "INV_NO"))
    good = next(i for i in invoices if str(i) not in bad)
    record = await hub.get("invoice", f"erp:{good}")
    stored = sorted((n, item) for i, n, item in backend.rows("INV_LINES", "INV_NO", "LINE_NO",
                                                               "ITEM_NO") if i == good)
    assert [line.sku for line in record.lines] == [item for _, item in stored]
    assert record == next(r for r in await read_all(hub, "invoice", sources=["erp"])
                          if r.id == record.id)

    for missing in (f"erp:{invoices[-1] + 1000}", "erp:abc", "erp:", "nosuch:1", "erp:1e999999",
                    "erp:NaN", f"plain:{good}"):
        with pytest.raises((RecordNotFound, QueryError)):
            await hub.get("invoice", missing)
    with pytest.raises(RecordNotFound):
        await hub.get("invoice", f"erp:{invoices[-1] + 1000}")

    for remote_id, fields in bad.items():
        with pytest.raises(QuarantinedRecord) as caught:
            await hub.get("invoice", f"erp:{remote_id}")
        assert caught.value.remote_id == remote_id
        for field in fields:
            assert any(field in reason for reason in caught.value.reasons)
    [company] = planted("company").quarantined
    with pytest.raises(QuarantinedRecord, match="name"):
        await hub.get("company", f"erp:{company}")


async def test_get_from_a_declared_query(backend: Backend, make_hub: MakeHub) -> None:
    hub = make_hub()
    orders = await read_all(hub, "order", sources=["adhoc"])
    assert len(orders) == backend.count("ORDERS")
    for record in orders[:2]:
        fetched = await hub.get("order", record.id)
        assert fetched == record and fetched.lines
    products = await read_all(hub, "product", sources=["adhoc"])
    assert len(products) == backend.count("ITEMS")
    assert await hub.get("product", products[0].id) == products[0]
    with pytest.raises(RecordNotFound):
        await hub.get("order", "adhoc:abc")


async def test_table_names_resolve_ignoring_case(backend: Backend, make_hub: MakeHub) -> None:
    """``customers`` finds ``CUSTOMERS`` (quoted on PostgreSQL, case-sensitive on MariaDB)."""
    hub = make_hub()
    connector = await hub.connector("plain")
    assert isinstance(connector, SqlConnector)
    request = ReadRequest(entity="company", origin={"table": "customers"},
                          id_paths=("cust_no",), paths=("cust_no", "cust_name"), batch_size=1000)
    rows = _flat(await _batches(connector, request))
    assert sorted(r["cust_no"] for r in rows) == sorted(c for (c,) in backend.rows(
        "CUSTOMERS", "CUST_NO"))
    missing = dataclasses.replace(request, origin={"table": "CUSTOMER"})
    with pytest.raises(SourceError, match=r"no table 'CUSTOMER'; tables: .*CUSTOMERS") as caught:
        await _batches(connector, missing)
    assert caught.value.source == "plain" and caught.value.owner == OWNER
    no_column = dataclasses.replace(request, paths=("cust_no", "NO_SUCH_COLUMN"))
    with pytest.raises(SourceError, match="NO_SUCH_COLUMN"):
        await _batches(connector, no_column)


# === 9. discover, check, unreachable databases ==============================================


async def test_discover_lists_tables_columns_and_keys(backend: Backend,
                                                      make_hub: MakeHub) -> None:
    hub = make_hub()
    schema = await hub.discover("erp")
    tables = {t.name: t for t in schema.tables}
    assert set(tables) >= set(ERP_COLUMNS)
    insp = sa.inspect(backend.engine)
    for name, columns in ERP_COLUMNS.items():
        table = tables[name]
        assert tuple(c.name for c in table.columns) == columns
        assert table.primary_key == tuple(insp.get_pk_constraint(name)["constrained_columns"])
        assert table.primary_key == columns[: 2 if name.endswith("_LINES") else 1]
    assert await hub.check(["erp", "plain", "adhoc", "scratch"]) == {
        "erp": None, "plain": None, "adhoc": None, "scratch": None}


@pytest.fixture
def down_source(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("PB_TEST_DOWN_PASSWORD", "hunter2-not-for-logs")
    source = copy.deepcopy(ERP)
    source["owner"] = "dba-on-call@acme.example"
    source["settings"] = {"url": backend.down_url}
    if backend.name != "sqlite":  # SQLite has no password (see test_sqlite_ignores_a_password)
        source["settings"]["password"] = "env:PB_TEST_DOWN_PASSWORD"
    return source


def _assert_names_down(error: BaseException) -> None:
    text = str(error)
    assert "'down'" in text and "dba-on-call@acme.example" in text
    seen: BaseException | None = error
    while seen is not None:  # nor anywhere in the chain a traceback would print
        assert "hunter2" not in str(seen) and "hunter2" not in repr(seen)
        seen = seen.__cause__ or seen.__context__


async def test_unreachable_database_is_source_unavailable(make_hub: MakeHub,
                                                          down_source: dict[str, Any]) -> None:
    hub = make_hub(down=down_source)
    attempts: list[Callable[[], Any]] = [
        lambda: read_all(hub, "company", sources=["down"]),
        lambda: read_all(hub, "company", sources=["down"], id="down:10001"),
        lambda: read_all(hub, "product", sources=["down"], order_by="-sku"),
        lambda: hub.fetch("invoice", sources=["down"], limit=3),
        lambda: hub.get("invoice", "down:500001"),
        lambda: hub.discover("down"),
    ]
    for attempt in attempts:
        with pytest.raises(SourceUnavailable) as caught:
            await attempt()
        assert caught.value.source == "down"
        _assert_names_down(caught.value)
    [failure] = (await hub.check(["down"])).values()
    assert failure is not None and failure.unavailable and failure.source == "down"
    assert failure.owner == "dba-on-call@acme.example" and "hunter2" not in failure.error


async def test_partial_results_when_one_source_is_down(backend: Backend, make_hub: MakeHub,
                                                       down_source: dict[str, Any]) -> None:
    hub = make_hub(down=down_source)
    expected = backend.count("CUSTOMERS") - len(planted("company").quarantined)
    stream = hub.query("company", sources=["erp", "down"], partial=True)
    records = [record async for record in stream]
    assert len(records) == expected and {r.source for r in records} == {"erp"}
    [error] = stream.errors
    assert (error.source, error.owner, error.unavailable) == (
        "down", "dba-on-call@acme.example", True)
    assert "hunter2" not in error.error

    page = await hub.fetch("company", sources=["down", "erp"], partial=True, limit=1000,
                           name__contains="a")
    assert page.records and {r.source for r in page.records} == {"erp"}
    assert [e.source for e in page.errors] == ["down"]
    with pytest.raises(SourceUnavailable):
        await read_all(hub, "company", sources=["erp", "down"])


# === 10. read-only ===========================================================================


def _write(engine: sa.Engine, statement: sa.Executable) -> None:
    with engine.connect() as conn:
        conn.execute(statement)
        conn.commit()


async def test_engines_cannot_write(backend: Backend, make_hub: MakeHub) -> None:
    hub = make_hub()
    before = backend.count("ITEMS")
    for source in ("erp", "adhoc"):
        engine = (await hub.connector(source)).engine
        items = sa.table("ITEMS", sa.column("ITEM_NO"), sa.column("DESCR"))
        with pytest.raises(sa.exc.DBAPIError):
            _write(engine, items.insert().values(ITEM_NO="ZZ-9999", DESCR="written"))
        with pytest.raises(sa.exc.DBAPIError):
            _write(engine, items.update().values(DESCR="changed"))
    assert backend.count("ITEMS") == before


# === the conformance kit, on every backend ====================================================


class TestSqlConformance(ConnectorConformance):
    @pytest.fixture(params=[("erp", "contact", 0), ("erp", "company", 1), ("erp", "invoice", 3),
                            ("erp", "order", 0), ("plain", "product", 0), ("adhoc", "order", 0)],
                    ids=lambda p: f"{p[0]}-{p[1]}")
    def case(self, request: pytest.FixtureRequest, backend: Backend,
             tmp_path: Path) -> ConformanceCase:
        source, entity, quarantined = request.param
        return ConformanceCase(config=config_data(backend, tmp_path), source=source,
                               entity=entity, quarantined=quarantined, entities=registry())
