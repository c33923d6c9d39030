"""Tests for the deterministic demo data generator (patchbay.demo.generate)."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import unicodedata
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from patchbay.demo.generate import (
    BROKEN,
    CRM_HEADER,
    CRM_TABLE,
    ERP_COLUMNS,
    BrokenRows,
    DemoFiles,
    PlantedRow,
    generate,
)

EU_AMOUNT = re.compile(r"\d{1,3}(\.\d{3})*,\d{2}")
DOT_AMOUNT = re.compile(r"\d+\.\d{2}")
EMAIL = re.compile(r"[a-z0-9._-]+@([a-z0-9]+(-[a-z0-9]+)*\.)+[a-z]{2,}")
PHONE = re.compile(r"\+?[0-9()./ -]+( ext\. \d+)?")
DOCUMENTS = (("ORDERS", "ORD_LINES", "ORD_NO"), ("INV_HDR", "INV_LINES", "INV_NO"))
ERP_COUNTRIES = {"GB", "United Kingdom", "Deutschland", "DE", "France", "Nederland", "USA",
                 "España", "IE"}


def eu(text: str) -> Decimal:
    """Parse the ERP's continental amount form ``1.234,50``."""
    assert EU_AMOUNT.fullmatch(text), text
    return Decimal(text.replace(".", "").replace(",", "."))


def dot(text: str) -> Decimal:
    assert DOT_AMOUNT.fullmatch(text), text
    return Decimal(text)


def planted_keys(table: str, column: str) -> set[tuple[int, ...]]:
    return {p.key for p in BROKEN.in_table(table) if p.column == column}


def lookup(conn: sqlite3.Connection, p: PlantedRow) -> object:
    keys = ERP_COLUMNS[p.table][: len(p.key)]
    where = " AND ".join(f"{k} = ?" for k in keys)
    found = conn.execute(f"SELECT {p.column} FROM {p.table} WHERE {where}", p.key).fetchall()
    assert len(found) == 1, p
    return found[0][0]


def table(conn: sqlite3.Connection, name: str) -> list[dict[str, object]]:
    cursor = conn.execute(f"SELECT * FROM {name} ORDER BY rowid")
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor]


def crm_records(files: DemoFiles) -> list[list[str]]:
    text = files.crm_csv.read_bytes().decode("cp1252")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";", quotechar='"'))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoFiles:
    return generate(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def erp(demo: DemoFiles) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{demo.erp}?mode=ro", uri=True)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def crm(demo: DemoFiles) -> list[list[str]]:
    return crm_records(demo)


# --- files and determinism ------------------------------------------------------------------


def test_returns_paths_inside_directory(tmp_path: Path) -> None:
    files = generate(tmp_path / "nested" / "demo")
    assert files == DemoFiles(tmp_path / "nested" / "demo", tmp_path / "nested" / "demo" /
                              "erp.sqlite", tmp_path / "nested" / "demo" / "crm_contacts.csv")
    assert sorted(p.name for p in files.directory.iterdir()) == ["crm_contacts.csv", "erp.sqlite"]


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    first, second = generate(tmp_path / "a"), generate(tmp_path / "b")
    assert first.erp.read_bytes() == second.erp.read_bytes()
    assert first.crm_csv.read_bytes() == second.crm_csv.read_bytes()
    erp, csv_bytes = first.erp.read_bytes(), first.crm_csv.read_bytes()
    again = generate(tmp_path / "a")  # idempotent: overwriting gives the same bytes
    assert again.erp.read_bytes() == erp
    assert again.crm_csv.read_bytes() == csv_bytes
    assert sorted(p.name for p in tmp_path.joinpath("a").iterdir()) == [
        "crm_contacts.csv", "erp.sqlite"]  # no temporary files left behind


def test_other_seed_gives_other_data(tmp_path: Path) -> None:
    first, other = generate(tmp_path / "a"), generate(tmp_path / "b", seed=8)
    assert first.erp.read_bytes() != other.erp.read_bytes()
    assert first.crm_csv.read_bytes() != other.crm_csv.read_bytes()


def test_overwrite_false_refuses_existing_files(tmp_path: Path) -> None:
    files = generate(tmp_path, overwrite=False)
    before = files.erp.read_bytes()
    with pytest.raises(FileExistsError):
        generate(tmp_path, seed=99, overwrite=False)
    assert files.erp.read_bytes() == before


@pytest.mark.parametrize(("customers", "items", "contacts"), [(39, 25, 40), (60, 9, 40),
                                                               (60, 25, 24)])
def test_too_small_for_the_planted_rows(tmp_path: Path, customers: int, items: int,
                                        contacts: int) -> None:
    with pytest.raises(ValueError, match="at least"):
        generate(tmp_path, customers=customers, items=items, contacts=contacts)
    assert not tmp_path.joinpath("erp.sqlite").exists()


def test_other_sizes_keep_planted_rows(tmp_path: Path) -> None:
    files = generate(tmp_path, seed=3, customers=45, items=12, contacts=30)
    with sqlite3.connect(files.erp) as conn:
        assert conn.execute("SELECT COUNT(*) FROM CUSTOMERS").fetchone() == (45,)
        assert conn.execute("SELECT COUNT(*) FROM ITEMS").fetchone() == (12,)
        for p in BROKEN.rows + BROKEN.messy:
            if p.table in ERP_COLUMNS:
                assert lookup(conn, p) == p.value
    conn.close()
    records = crm_records(files)
    assert len(records) == 31
    for p in BROKEN.in_table(CRM_TABLE):
        assert records[p.key[0]][CRM_HEADER.index(p.column)] == p.value


# --- ERP database ---------------------------------------------------------------------------


def test_schema(erp: sqlite3.Connection) -> None:
    for name, columns in ERP_COLUMNS.items():
        info = erp.execute(f"PRAGMA table_info({name})").fetchall()
        assert tuple(row[1] for row in info) == columns
        width = 2 if name.endswith("_LINES") else 1
        assert [row[1] for row in info if row[5]] == list(columns[:width])
        for row in info:
            expected = "INTEGER" if row[1] in {"CUST_NO", "ORD_NO", "INV_NO", "LINE_NO"} else "TEXT"
            assert row[2] == expected, (name, row)


def test_row_counts(erp: sqlite3.Connection) -> None:
    def count(sql: str) -> int:
        value = erp.execute(sql).fetchone()[0]
        assert isinstance(value, int)
        return value

    assert count("SELECT COUNT(*) FROM CUSTOMERS") == 60
    assert count("SELECT COUNT(*) FROM ITEMS") == 25
    for header, lines, key in DOCUMENTS:
        documents = count(f"SELECT COUNT(*) FROM {header}")
        assert 60 * 1.5 <= documents <= 60 * 2.5  # about two per customer
        assert count(f"SELECT COUNT(DISTINCT CUST_NO) FROM {header}") == 60
        assert count(f"SELECT MAX(n) FROM (SELECT COUNT(*) n FROM {header} GROUP BY CUST_NO)") <= 3
        per_doc = erp.execute(f"SELECT {key}, COUNT(*), MAX(LINE_NO) FROM {lines} GROUP BY {key}")
        stats = per_doc.fetchall()
        assert len(stats) == documents  # every document has lines
        assert all(1 <= n <= 4 and n == top for _, n, top in stats)
        assert count(f"SELECT COUNT(*) FROM {lines} WHERE {key} NOT IN "
                     f"(SELECT {key} FROM {header})") == 0
    first = {"CUSTOMERS": 10001, "ORDERS": 70001, "INV_HDR": 500001}
    for name, start in first.items():
        numbers = [r[0] for r in erp.execute(f"SELECT {ERP_COLUMNS[name][0]} FROM {name}")]
        assert numbers == list(range(start, start + len(numbers)))


def test_rows_inserted_in_primary_key_order(erp: sqlite3.Connection) -> None:
    for name, columns in ERP_COLUMNS.items():
        keys = ", ".join(columns[: 2 if name.endswith("_LINES") else 1])
        in_rowid_order = erp.execute(f"SELECT {keys} FROM {name} ORDER BY rowid").fetchall()
        assert in_rowid_order == sorted(in_rowid_order), name


def test_broken_counts() -> None:
    assert isinstance(BROKEN, BrokenRows)
    assert BROKEN.counts == {"CUSTOMERS": 7, "INV_HDR": 2, "INV_LINES": 1, CRM_TABLE: 3}
    assert BROKEN.count("CUSTOMERS", "quarantine") == 1
    assert BROKEN.count("CUSTOMERS", "null") == 6
    assert BROKEN.count("INV_HDR", "quarantine") == 2
    assert BROKEN.count(CRM_TABLE, "quarantine") == 1
    assert all(p.outcome in ("quarantine", "null") for p in BROKEN.rows)
    assert all(p.outcome == "clean" for p in BROKEN.messy)
    assert all(p.description for p in BROKEN.rows + BROKEN.messy)
    assert len({(p.table, p.key, p.column) for p in BROKEN.rows + BROKEN.messy}) == len(
        BROKEN.rows + BROKEN.messy)


def test_planted_erp_values_are_where_broken_says(erp: sqlite3.Connection) -> None:
    planted = [p for p in BROKEN.rows + BROKEN.messy if p.table != CRM_TABLE]
    assert planted
    for p in planted:
        assert p.column in ERP_COLUMNS[p.table]
        assert lookup(erp, p) == p.value, p
    for p in BROKEN.messy:
        if p.column in ("CUST_NAME", "EMAIL") and p.table == "CUSTOMERS":
            cleaned = " ".join(p.value.split())
            cleaned = cleaned.lower() if p.column == "EMAIL" else cleaned
            assert (cleaned or None) == p.expected


def test_no_unplanted_customer_defects(erp: sqlite3.Connection) -> None:
    for row in table(erp, "CUSTOMERS"):
        key = (row["CUST_NO"],)

        def fine(column: str, key: tuple[object, ...] = key) -> bool:
            return key not in planted_keys("CUSTOMERS", column)

        values = {k: v for k, v in row.items() if isinstance(v, str)}
        assert len(values) == len(row) - 1  # every column but CUST_NO is text
        if fine("CUST_NAME"):
            assert values["CUST_NAME"].strip()
        if fine("CREATED"):
            datetime.strptime(values["CREATED"], "%d/%m/%Y")
        if fine("EMAIL"):
            assert EMAIL.fullmatch(values["EMAIL"].strip().lower()), values["EMAIL"]
        if fine("PHONE"):
            assert PHONE.fullmatch(values["PHONE"]), values["PHONE"]
            assert sum(c.isdigit() for c in values["PHONE"].split(" ext.")[0]) >= 8
        if fine("CREDIT_LIM"):
            eu(values["CREDIT_LIM"])
        if fine("COUNTRY"):
            assert values["COUNTRY"] in ERP_COUNTRIES
        assert values["STATUS"] in {"A", "I", "P", "X"}
        updated = datetime.strptime(values["UPDATED_AT"], "%Y-%m-%d %H:%M:%S")
        assert 8 <= updated.hour <= 19  # never inside a DST gap or overlap


def test_items(erp: sqlite3.Connection) -> None:
    rows = table(erp, "ITEMS")
    assert all(re.fullmatch(r"[A-Z]{2}-\d{4}", str(r["ITEM_NO"])) for r in rows)
    assert all(r["ACTIVE"] in ("Y", "N") for r in rows)
    assert all(dot(str(r["PRICE"])) > 0 for r in rows)
    assert len({r["DESCR"] for r in rows}) == len(rows)


def test_line_amounts_add_up(erp: sqlite3.Connection) -> None:
    """Line AMOUNT = QTY * PRICE and header TOTAL = sum of lines, in exact Decimals."""
    prices = {r["ITEM_NO"]: r["PRICE"] for r in table(erp, "ITEMS")}
    bad_qty = planted_keys("INV_LINES", "QTY")
    for header, lines, key in DOCUMENTS:
        sums: dict[object, Decimal] = {}
        for line in table(erp, lines):
            assert line["ITEM_NO"] in prices
            amount = dot(str(line["AMOUNT"]))
            if (line[key], line["LINE_NO"]) not in bad_qty:
                qty = str(line["QTY"])
                assert qty.isdigit()
                assert dot(str(line["PRICE"])) * int(qty) == amount
            sums[line[key]] = sums.get(line[key], Decimal(0)) + amount
        bad_total = planted_keys(header, "TOTAL")
        checked = 0
        for doc in table(erp, header):
            if (doc[key],) in bad_total:
                continue
            assert eu(str(doc["TOTAL"])) == sums[doc[key]], doc
            assert doc["CURRENCY"] in ("EUR", "GBP")
            checked += 1
        assert checked == len(sums) - len(bad_total)


def test_invoice_headers(erp: sqlite3.Connection) -> None:
    bad_date = planted_keys("INV_HDR", "INV_DATE")
    for doc in table(erp, "INV_HDR"):
        balance = eu(str(doc["BALANCE"]))
        due = datetime.strptime(str(doc["DUE_DATE"]), "%d/%m/%Y")
        if (doc["INV_NO"],) not in bad_date:
            assert datetime.strptime(str(doc["INV_DATE"]), "%d/%m/%Y") < due
        assert doc["STATUS"] in {"D", "O", "P", "V"}
        if doc["STATUS"] in ("P", "V"):
            assert balance == 0
        elif (doc["INV_NO"],) not in planted_keys("INV_HDR", "TOTAL"):
            assert 0 < balance <= eu(str(doc["TOTAL"]))
    currencies = {r[0] for r in erp.execute("SELECT CURRENCY FROM ORDERS")}
    assert currencies == {"EUR", "GBP"}
    for row in erp.execute("SELECT ORD_DATE, STATUS FROM ORDERS"):
        datetime.strptime(row[0], "%d/%m/%Y")
        assert row[1] in {"N", "C", "S", "X"}


# --- CRM CSV --------------------------------------------------------------------------------


def test_crm_csv_is_cp1252(demo: DemoFiles, crm: list[list[str]]) -> None:
    raw = demo.crm_csv.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert "Señor Frío" in raw.decode("cp1252")
    assert tuple(crm[0]) == CRM_HEADER
    assert raw.startswith(b"Contact ID;First Name;Last Name;E-mail;Phone;Mobile;Company;"
                          b"Job Title;Country;Created;Modified\r\n")
    assert len(crm) == 41  # header + 40 contacts
    assert all(len(record) == len(CRM_HEADER) for record in crm)


def test_crm_fields_with_delimiter_and_quotes_round_trip(demo: DemoFiles,
                                                         crm: list[list[str]]) -> None:
    raw = demo.crm_csv.read_bytes()
    tricky = [p for p in BROKEN.in_table(CRM_TABLE) if ";" in p.value]
    assert len(tricky) == 2
    for p in tricky:
        assert '"' in p.value
        assert crm[p.key[0]][CRM_HEADER.index(p.column)] == p.value == p.expected
        escaped = '"' + p.value.replace('"', '""') + '"'
        assert escaped.encode("cp1252") in raw


def test_planted_crm_values_are_where_broken_says(crm: list[list[str]]) -> None:
    for p in BROKEN.in_table(CRM_TABLE):
        assert crm[p.key[0]][CRM_HEADER.index(p.column)] == p.value, p


def test_no_unplanted_crm_defects(crm: list[list[str]]) -> None:
    col = {name: i for i, name in enumerate(CRM_HEADER)}
    ids = [r[col["Contact ID"]] for r in crm[1:]]
    empty = {(n,) for n, value in enumerate(ids, 1) if not value}
    assert empty == planted_keys(CRM_TABLE, "Contact ID")
    assert len(set(ids)) == len(ids)
    for number, record in enumerate(crm[1:], 1):
        key = (number,)
        if key not in planted_keys(CRM_TABLE, "E-mail"):
            assert EMAIL.fullmatch(record[col["E-mail"]].strip().lower()), record
        assert PHONE.fullmatch(record[col["Phone"]]), record
        modified = datetime.strptime(record[col["Modified"]], "%m/%d/%Y %H:%M")
        assert 8 <= modified.hour <= 19
        if key not in planted_keys(CRM_TABLE, "Created"):
            created = datetime.strptime(record[col["Created"]], "%m/%d/%Y")
            assert created <= modified


def test_crm_shares_companies_with_erp(erp: sqlite3.Connection, crm: list[list[str]]) -> None:
    def norm(name: str) -> str:
        plain = "".join(c for c in unicodedata.normalize("NFKD", name.casefold())
                        if not unicodedata.combining(c))
        words = plain.split()
        legal = {"ltd", "gmbh", "sarl", "b.v.", "inc.", "s.l.", "llc"}
        return " ".join(w for w in words if w not in legal and w != "societe")

    erp_names = {norm(str(r[0])) for r in erp.execute("SELECT CUST_NAME FROM CUSTOMERS")}
    company = CRM_HEADER.index("Company")
    shared = [r for r in crm[1:] if norm(r[company]) in erp_names]
    assert 10 <= len(shared) < len(crm) - 1
    assert any(r[company] not in {str(n[0]) for n in erp.execute("SELECT CUST_NAME FROM CUSTOMERS")}
               for r in shared)  # spelled differently at least once
