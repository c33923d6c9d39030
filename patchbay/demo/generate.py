"""Deterministic generator for the demo's legacy sources (``patchbay demo``, no servers).

:func:`generate` writes two files into a directory:

* ``erp.sqlite`` - a SQLite database with the habits of a 12-year-old ERP: UPPER-CASE tables,
  everything stored as TEXT, ``DD/MM/YYYY`` dates, continental amounts (``1.234,50``) on headers
  and dotted ones (``1234.50``) on lines, one-letter status codes, Europe/London local times.
* ``crm_contacts.csv`` - a cp1252, ``;``-delimited CRM export with US dates (``MM/DD/YYYY``)
  and America/New_York local ``Modified`` times.

All values come from ``random.Random(seed)`` and fixed in-module lists: no wall clock, no
network, so the same arguments give byte-identical files. Times are always 08:00-19:59, so
no value falls into a daylight-saving gap or overlap. Defects are planted at fixed positions
that do not depend on the seed or the sizes; :data:`BROKEN` lists every one of them.
"""

from __future__ import annotations

import csv
import io
import os
import random
import sqlite3
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Literal

__all__ = ["BROKEN", "CRM_HEADER", "CRM_TABLE", "ERP_COLUMNS", "BrokenRows", "DemoFiles",
           "Outcome", "PlantedRow", "generate"]

Outcome = Literal["quarantine", "null", "clean"]
Cell = str | int | None
Rows = list[list[Cell]]

CRM_TABLE = "crm_contacts"
"""Table name used in :data:`BROKEN` for the CRM CSV (keys are 1-based record numbers)."""
CRM_HEADER = ("Contact ID", "First Name", "Last Name", "E-mail", "Phone", "Mobile", "Company",
              "Job Title", "Country", "Created", "Modified")
ERP_COLUMNS: dict[str, tuple[str, ...]] = {
    "CUSTOMERS": ("CUST_NO", "CUST_NAME", "CONTACT_FIRST", "CONTACT_LAST", "EMAIL", "PHONE",
                  "COUNTRY", "CITY", "CREATED", "CREDIT_LIM", "STATUS", "UPDATED_AT"),
    "ITEMS": ("ITEM_NO", "DESCR", "LONG_DESCR", "PRICE", "ACTIVE"),
    "ORDERS": ("ORD_NO", "CUST_NO", "ORD_DATE", "STATUS", "TOTAL", "CURRENCY"),
    "ORD_LINES": ("ORD_NO", "LINE_NO", "ITEM_NO", "QTY", "PRICE", "AMOUNT"),
    "INV_HDR": ("INV_NO", "CUST_NO", "INV_DATE", "DUE_DATE", "STATUS", "TOTAL", "BALANCE",
                "CURRENCY", "UPDATED_AT"),
    "INV_LINES": ("INV_NO", "LINE_NO", "ITEM_NO", "DESCR", "QTY", "PRICE", "AMOUNT"),
}
"""Columns of every ERP table in order; the key is the first column (first two for ``*_LINES``)."""
_INTEGER = {"CUST_NO", "ORD_NO", "INV_NO", "LINE_NO"}
CUST_FIRST, ORD_FIRST, INV_FIRST = 10001, 70001, 500001
MIN_CUSTOMERS, MIN_ITEMS, MIN_CONTACTS = 40, 10, 25


@dataclass(frozen=True)
class DemoFiles:
    """Paths of one generated demo data set."""

    directory: Path
    erp: Path  # directory / "erp.sqlite"
    crm_csv: Path  # directory / "crm_contacts.csv"


@dataclass(frozen=True)
class PlantedRow:
    """One value planted on purpose.

    ``key`` is the primary key for ERP tables (``(CUST_NO,)``, ``(INV_NO,)``,
    ``(INV_NO, LINE_NO)``) and the 1-based record number (header excluded) for
    :data:`CRM_TABLE`. ``outcome`` is what the mapping must do: ``"quarantine"`` the row,
    set the field to ``"null"`` (with a warning), or - for messy but valid values -
    normalise it ``"clean"`` to ``expected`` (``None`` meaning a blank becomes null).
    """

    table: str
    key: tuple[int, ...]
    column: str
    value: str
    outcome: Outcome
    description: str
    expected: str | None = None


@dataclass(frozen=True)
class BrokenRows:
    """What :func:`generate` planted: defects (``rows``) and messy-but-valid values (``messy``)."""

    rows: tuple[PlantedRow, ...]
    messy: tuple[PlantedRow, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        """Number of defects per table (messy values are not defects)."""
        return dict(Counter(r.table for r in self.rows))

    def count(self, table: str, outcome: Outcome | None = None) -> int:
        """Number of defects in ``table``, optionally only those with ``outcome``."""
        return sum(1 for r in self.rows if r.table == table and outcome in (None, r.outcome))

    def in_table(self, table: str) -> tuple[PlantedRow, ...]:
        """Every planted value (defects, then messy ones) of ``table``."""
        return tuple(r for r in self.rows + self.messy if r.table == table)


_P = PlantedRow
BROKEN = BrokenRows(
    rows=(
        _P("CUSTOMERS", (10004,), "CUST_NAME", "", "quarantine", "blank company name (required)"),
        _P("CUSTOMERS", (10009,), "CREATED", "31/02/2019", "null", "impossible date, 31 February"),
        _P("CUSTOMERS", (10012,), "PHONE", "n/a", "null", "placeholder instead of a phone"),
        _P("CUSTOMERS", (10015,), "EMAIL", "john.doe@", "null", "e-mail without a domain"),
        _P("CUSTOMERS", (10022,), "CREDIT_LIM", "12,3x", "null", "amount with a stray letter"),
        _P("CUSTOMERS", (10027,), "PHONE", "unknown", "null", "placeholder instead of a phone"),
        _P("CUSTOMERS", (10030,), "COUNTRY", "Atlantis", "null", "country that does not exist"),
        _P("INV_HDR", (500003,), "TOTAL", "n/a", "quarantine", "required total is not an amount"),
        _P("INV_HDR", (500011,), "INV_DATE", "2019-13-45", "quarantine",
           "required invoice date with month 13 and day 45"),
        _P("INV_LINES", (500007, 2), "QTY", "two", "quarantine", "quantity spelled out in words"),
        _P(CRM_TABLE, (5,), "Contact ID", "", "quarantine", "empty id: record cannot be keyed"),
        _P(CRM_TABLE, (12,), "E-mail", "not-an-email", "null", "e-mail without an @"),
        _P(CRM_TABLE, (20,), "Created", "13/45/2020", "null", "month 13, day 45 (MM/DD/YYYY)"),
    ),
    messy=(
        _P("CUSTOMERS", (10006,), "CUST_NAME", "Zoë's  Kitchen Supplies Ltd \t", "clean",
           "double inner space, trailing space and tab", "Zoë's Kitchen Supplies Ltd"),
        _P("CUSTOMERS", (10008,), "EMAIL", "  Purchasing@Kessler-Tools.DE ", "clean",
           "surrounding spaces, mixed case", "purchasing@kessler-tools.de"),
        _P("CUSTOMERS", (10018,), "EMAIL", "", "clean", "blank optional e-mail", None),
        _P("CUSTOMERS", (10025,), "STATUS", "X", "clean", "blocked: no canonical status", "other"),
        _P("CUSTOMERS", (10035,), "EMAIL", "", "clean", "blank optional e-mail", None),
        _P(CRM_TABLE, (2,), "Company", 'Señor Frío; Importaciones "El Sol" S.L.', "clean",
           "';' and quotes inside a field", 'Señor Frío; Importaciones "El Sol" S.L.'),
        _P(CRM_TABLE, (3,), "Job Title", 'Head of "Special" Projects; EMEA', "clean",
           "';' and quotes inside a field", 'Head of "Special" Projects; EMEA'),
        _P(CRM_TABLE, (7,), "E-mail", " Sales@Example.COM ", "clean",
           "surrounding spaces, mixed case", "sales@example.com"),
    ),
)
"""Every planted value; positions are fixed and independent of seed and sizes."""

_ROOTS = ("Müller", "Ångström", "O'Brien", "Dupont", "Van Dijk", "García", "Hartley", "Kessler",
          "Lindqvist", "Moreau", "Brennan", "Schäfer", "Turner", "Weiß", "Janssen", "Fernández",
          "Whitfield", "Lefèvre", "Novak", "Cortés")
_TRADES = ("Engineering", "Logistics", "Tooling", "Pumps", "Optics", "Packaging", "Textiles",
           "Foods", "Hydraulics", "Fasteners")
_FIRST = ("Anna", "Björn", "Chloé", "Dermot", "Élodie", "Françoise", "Günter", "Hannah", "Iñigo",
          "Jürgen", "Kate", "Lars", "Maëlle", "Niamh", "Oliver", "Pádraig", "Raúl", "Siobhán",
          "Thomas", "Zoë", "John", "Mary", "Pierre", "Sofía")
_LAST = ("Müller", "O'Brien", "Ångström", "Dubois", "García", "Schmidt", "Smith", "Jones",
         "de Vries", "Fernández", "Murphy", "Weber", "Lefèvre", "Núñez", "Walsh", "Becker",
         "Martin", "Janssen", "Kowalski", "Thompson", "Señor")
_JOBS = ("Purchasing Manager", "Head of Operations", "Buyer", "CFO", "Accounts Payable",
         "Directeur Général", "Einkaufsleiter", "Office Manager", "Jefa de Compras")
_GOODS = ("Hex bolt", "Ball bearing", "Hydraulic hose", "Gasket", "Pump housing", "Drive belt",
          "Pressure sensor", "Ball valve", "Coupling", "Bracket", "Filter cartridge", "Seal kit")
_SIZES = ("M8", "Ø40", "DN25", "1 m", "6204", "XL", "24 V")
_MATERIALS = ("stainless steel A4", "zinc-plated steel", "EPDM", "brass", "PTFE", "aluminium")
# key: (ERP spellings, CRM spelling, cities, legal suffix, e-mail TLD, weight, phone templates)
# Phone templates: '#' is a random digit, '@' a New York area code.
_Names = tuple[str, ...]
_COUNTRIES: dict[str, tuple[_Names, str, _Names, str, str, int, _Names]] = {
    "GB": (("GB", "United Kingdom"), "United Kingdom", ("London", "Manchester", "Leeds", "Bristol"),
           "Ltd", "co.uk", 30, ("020 7946 0###", "+44 20 7946 0###", "(0)20-7946-0###",
                                "0161 496 0###")),
    "DE": (("DE", "Deutschland"), "Germany", ("Berlin", "München", "Köln", "Hamburg"), "GmbH",
           "de", 25, ("0049 30 ######", "+49 (0)89 #######", "030/######")),
    "FR": (("France",), "France", ("Paris", "Lyon", "Besançon", "Nantes"), "SARL", "fr", 10,
           ("+33 1 ## ## ## ##", "01.##.##.##.##")),
    "NL": (("Nederland",), "Netherlands", ("Amsterdam", "Utrecht", "Den Haag"), "B.V.", "nl", 10,
           ("+31 20 ### ####", "020-#######")),
    "US": (("USA",), "United States", ("New York", "Boston", "Chicago"), "Inc.", "com", 10,
           ("+1 (@) 555-01##", "@-555-01##")),
    "ES": (("España",), "Spain", ("Madrid", "Barcelona", "Málaga"), "S.L.", "es", 8,
           ("+34 91 ### ## ##",)),
    "IE": (("IE",), "Ireland", ("Dublin", "Cork", "Galway"), "Ltd", "ie", 7,
           ("+353 1 ### ####", "(01) ### ####")),
}
_US_PHONES = ("(@) 555-01##", "@.555.01##", "+1 @ 555 01##", "@-555-01##")
_START, _END = date(2012, 3, 1), date(2024, 6, 30)
_CENT = Decimal("0.01")
_SWAP = str.maketrans(",.", ".,")


@dataclass(frozen=True)
class _Doc:
    no: int
    cust: int
    day: date
    currency: str
    lines: list[tuple[str, str, int, Decimal, Decimal]]  # item, descr, qty, price, amount

    @property
    def total(self) -> Decimal:
        return sum((line[4] for line in self.lines), Decimal(0))


def _eu(amount: Decimal) -> str:
    """``Decimal("1234.5")`` -> ``"1.234,50"``."""
    return f"{amount:,.2f}".translate(_SWAP)


def _plain(text: str) -> str:
    """``text`` without accents."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _ascii(text: str) -> str:
    """ASCII letters and digits of ``text`` (for e-mail addresses)."""
    return "".join(c for c in _plain(text.replace("ß", "ss")) if c.isascii() and c.isalnum())


def _day(rng: random.Random, low: date, high: date = _END) -> date:
    return low + timedelta(days=rng.randrange((high - low).days + 1))


def _moment(rng: random.Random, low: date, days: int = 900) -> datetime:
    """A business-hours local time within ``days`` after ``low``, never after ``_END``."""
    day = min(low + timedelta(days=rng.randrange(days)), _END)
    return datetime(day.year, day.month, day.day, rng.randint(8, 19), rng.randrange(60),
                    rng.randrange(60))


def _phone(rng: random.Random, templates: tuple[str, ...]) -> str:
    area = rng.choice(("212", "646", "718", "917"))
    text = "".join(rng.choice("0123456789") if c == "#" else c for c in rng.choice(templates))
    return text.replace("@", area) + (f" ext. {rng.randint(10, 99)}" if rng.random() < 0.08 else "")


def _unique(rng: random.Random, pool: list[str], n: int) -> list[str]:
    """``n`` distinct names drawn from ``pool`` (numbered once the pool is exhausted)."""
    rng.shuffle(pool)
    return [pool[i % len(pool)] + (f" {i // len(pool) + 1}" if i >= len(pool) else "")
            for i in range(n)]


def _documents(rng: random.Random, parties: list[tuple[int, date, str]],
               catalogue: list[tuple[str, str, Decimal]], first: int,
               min_lines: dict[int, int]) -> list[_Doc]:
    """About two documents per party, numbered in date order, with 1-4 lines each."""
    heads = sorted((_day(rng, created), cust, currency) for cust, created, currency in parties
                   for _ in range(rng.choice((1, 2, 2, 3))))
    docs = []
    for no, (day, cust, currency) in enumerate(heads, start=first):
        lines = []
        for item, descr, list_price in rng.sample(catalogue, max(rng.randint(1, 4),
                                                                 min_lines.get(no, 1))):
            price = (list_price * Decimal("0.9")).quantize(_CENT) if rng.random() < 0.15 \
                else list_price
            qty = rng.randint(1, 20)
            lines.append((item, descr, qty, price, qty * price))
        docs.append(_Doc(no, cust, day, currency, lines))
    return docs


def _erp(rng: random.Random, n_customers: int, n_items: int
         ) -> tuple[dict[str, Rows], list[tuple[str, str]]]:
    """ERP rows per table (in primary-key order) and the clean (name, country) of companies."""
    catalogue: list[tuple[str, str, Decimal]] = []
    items: Rows = []
    names = _unique(rng, [f"{g} {s}" for g in _GOODS for s in _SIZES], n_items)
    for i, descr in enumerate(names):
        sku = f"{('AX', 'BK', 'CT', 'DV')[i % 4]}-{1001 + i}"
        price = (Decimal(rng.randrange(150, 250_000)) / 100).quantize(_CENT)
        long = rng.choice((None, "", f"{descr}, {rng.choice(_MATERIALS)}.\r\nPack of "
                                     f"{rng.choice((1, 5, 10, 50))}."))
        items.append([sku, descr, long, f"{price:.2f}", "N" if rng.random() < 0.15 else "Y"])
        catalogue.append((sku, descr, price))
    items.sort(key=lambda row: str(row[0]))
    catalogue.sort()
    planted = {p.key[0] for p in BROKEN.in_table("CUSTOMERS")}
    stems = _unique(rng, [f"{r} {t}" for r in _ROOTS for t in _TRADES], n_customers)
    customers: Rows = []
    parties: list[tuple[int, date, str]] = []
    companies: list[tuple[str, str]] = []
    for no, stem in enumerate(stems, start=CUST_FIRST):
        cc = rng.choices(list(_COUNTRIES), [c[5] for c in _COUNTRIES.values()])[0]
        spellings, _, cities, suffix, tld, _, phones = _COUNTRIES[cc]
        name = ("Société " if cc == "FR" and rng.random() < 0.5 else "") + f"{stem} {suffix}"
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        address = f"{_ascii(first)}.{_ascii(last)}@{'-'.join(map(_ascii, stem.split()))}.{tld}"
        email = rng.choice((address.lower(),) * 4 + (address, address.upper(), f" {address} "))
        messy = rng.choice((name,) * 6 + (name + "  ", name.replace(" ", "  ", 1),
                                          name.replace(" ", "\t", 1), name + "\t"))
        created = _day(rng, _START, date(2023, 12, 31))
        credit = Decimal(rng.randrange(400_000)) * Decimal("0.25")
        status = rng.choices("AIPX", (70, 15, 12, 3))[0]
        currency = "GBP" if cc == "GB" and rng.random() < 0.7 else "EUR"
        customers.append([no, messy, first, last, email, _phone(rng, phones),
                          rng.choice(spellings), rng.choice(cities), f"{created:%d/%m/%Y}",
                          _eu(credit), status, f"{_moment(rng, created):%Y-%m-%d %H:%M:%S}"])
        parties.append((no, created, currency))
        if no not in planted:
            companies.append((name, cc))
    orders = _documents(rng, parties, catalogue, ORD_FIRST, {})
    need = {p.key[0]: p.key[1] for p in BROKEN.in_table("INV_LINES")}
    invoices = _documents(rng, parties, catalogue, INV_FIRST, need)
    inv_rows: Rows = []
    for d in invoices:
        status = rng.choices("DOPV", (6, 24, 64, 6))[0]
        part = rng.choice((d.total, d.total, (d.total / 2).quantize(_CENT)))
        balance = Decimal(0) if status in ("P", "V") else d.total if status == "D" else part
        due = d.day + timedelta(days=rng.choice((14, 30, 30, 60)))
        inv_rows.append([d.no, d.cust, f"{d.day:%d/%m/%Y}", f"{due:%d/%m/%Y}", status,
                         _eu(d.total), _eu(balance), d.currency,
                         f"{_moment(rng, d.day, 120):%Y-%m-%d %H:%M:%S}"])
    tables: dict[str, Rows] = {
        "CUSTOMERS": customers,
        "ITEMS": items,
        "ORDERS": [[d.no, d.cust, f"{d.day:%d/%m/%Y}", rng.choices("NCSX", (8, 20, 62, 10))[0],
                    _eu(d.total), d.currency] for d in orders],
        "ORD_LINES": [[d.no, n, item, str(qty), f"{price:.2f}", f"{amount:.2f}"]
                      for d in orders
                      for n, (item, _, qty, price, amount) in enumerate(d.lines, 1)],
        "INV_HDR": inv_rows,
        "INV_LINES": [[d.no, n, item, descr, str(qty), f"{price:.2f}", f"{amount:.2f}"]
                      for d in invoices
                      for n, (item, descr, qty, price, amount) in enumerate(d.lines, 1)],
    }
    for p in BROKEN.rows + BROKEN.messy:
        if p.table in tables:
            row = next(r for r in tables[p.table] if tuple(r[: len(p.key)]) == p.key)
            row[ERP_COLUMNS[p.table].index(p.column)] = p.value
    return tables, companies


def _crm(rng: random.Random, companies: list[tuple[str, str]], n: int) -> bytes:
    """The CRM export, encoded in cp1252."""
    rows: list[list[str]] = []
    for record in range(1, n + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        if rng.random() < 0.5:
            name, cc = rng.choice(companies)
            # The CRM spells ERP companies its own way: case, legal form, accents.
            company = rng.choice((name.upper(), name.rsplit(" ", 1)[0], _plain(name),
                                  name.lower(), name))
        else:
            cc, company = "US", f"{rng.choice(_LAST)} & {rng.choice(_LAST)} LLC"  # CRM only
        domain = "-".join(filter(None, map(_ascii, company.split()[:3]))) + ".com"
        created = _day(rng, date(2015, 1, 1), date(2024, 1, 31))
        phone = _phone(rng, _US_PHONES if cc == "US" else _COUNTRIES[cc][6])
        mobile = _phone(rng, _US_PHONES) if rng.random() < 0.6 else ""
        country = rng.choice(("United States", "USA", "US")) if cc == "US" else _COUNTRIES[cc][1]
        rows.append([f"CRM-{record:05d}", first, last,
                     f"{_ascii(first)}.{_ascii(last)}@{domain}".lower(), phone, mobile, company,
                     rng.choice(_JOBS), country, f"{created:%m/%d/%Y}",
                     f"{_moment(rng, created, 500):%m/%d/%Y %H:%M}"])
    for p in BROKEN.in_table(CRM_TABLE):
        rows[p.key[0] - 1][CRM_HEADER.index(p.column)] = p.value
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", quotechar='"', lineterminator="\r\n")
    writer.writerow(CRM_HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("cp1252")


def _write_sqlite(path: Path, tables: dict[str, Rows]) -> None:
    with closing(sqlite3.connect(path)) as conn:
        for table, columns in ERP_COLUMNS.items():
            pk = columns[: 2 if table.endswith("_LINES") else 1]
            defs = [f"{c} {'INTEGER' if c in _INTEGER else 'TEXT'}"
                    + (" PRIMARY KEY" if pk == (c,) else "") for c in columns]
            if len(pk) > 1:
                defs.append(f"PRIMARY KEY ({', '.join(pk)})")
            conn.execute(f"CREATE TABLE {table} ({', '.join(defs)})")
            marks = ", ".join("?" * len(columns))
            # Table and column names come from ERP_COLUMNS, never from input.
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", tables[table])  # noqa: S608
        conn.commit()


def _atomic(path: Path, fill: Callable[[Path], object]) -> None:
    """Let ``fill`` write a temporary file next to ``path``, then move it into place."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        fill(tmp)
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def generate(directory: Path, *, seed: int = 7, customers: int = 60, items: int = 25,
             contacts: int = 40, overwrite: bool = True) -> DemoFiles:
    """Write ``erp.sqlite`` and ``crm_contacts.csv`` into ``directory`` (created if needed).

    The output depends only on the arguments: the same arguments give byte-identical files.
    Each file is written to a temporary name in ``directory`` and moved into place with
    :func:`os.replace`. With ``overwrite=False`` an existing target raises
    :class:`FileExistsError` and nothing is written. Sizes below ``MIN_CUSTOMERS``,
    ``MIN_ITEMS`` or ``MIN_CONTACTS`` raise :class:`ValueError`, since :data:`BROKEN`
    needs those rows to exist.
    """
    if customers < MIN_CUSTOMERS or items < MIN_ITEMS or contacts < MIN_CONTACTS:
        raise ValueError(f"need at least {MIN_CUSTOMERS} customers, {MIN_ITEMS} items and "
                         f"{MIN_CONTACTS} contacts for the planted rows")
    directory = Path(directory)
    files = DemoFiles(directory, directory / "erp.sqlite", directory / "crm_contacts.csv")
    existing = [str(p) for p in (files.erp, files.crm_csv) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"demo files already exist: {', '.join(existing)}")
    rng = random.Random(seed)
    tables, companies = _erp(rng, customers, items)
    crm = _crm(rng, companies, contacts)
    directory.mkdir(parents=True, exist_ok=True)
    _atomic(files.erp, lambda tmp: _write_sqlite(tmp, tables))
    _atomic(files.crm_csv, lambda tmp: tmp.write_bytes(crm))
    return files
