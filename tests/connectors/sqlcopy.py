"""Copy a SQLite database's tables into another database, for tests against real servers.

``copy_sqlite(path, url)`` recreates every table of a SQLite file (or the ones named) in the
database at ``url`` with generic SQLAlchemy types, then copies the rows in batches, in primary-key
order. It is how the demo ERP gets into PostgreSQL and MariaDB, and works the same for other
legacy files such as Northwind.

Names are kept exactly as they are (``CUSTOMERS``, ``Order Details``): SQLAlchemy quotes every
name that is not all lower case, so PostgreSQL stores ``"CUSTOMERS"`` case-sensitively and
reflecting ``CUSTOMERS`` finds it again, and MariaDB (``lower_case_table_names=0``) keeps the case
of table names. Configs therefore name tables and columns as the SQLite file does.

SQLite is typed per value, not per column, so a column's target type comes from what it holds
(``typeof()`` of its values) as much as from its declaration:

* INTEGER affinity holding only integers -> ``Integer`` (``BigInteger`` beyond 32 bits);
* REAL / NUMERIC holding numbers -> ``Numeric(p, s)`` when declared so, else ``Double``;
* DATE / DATETIME holding ISO text -> ``Date`` / ``DateTime`` (values parsed while copying);
* BLOB -> ``LargeBinary`` sized to the largest value (MariaDB picks a BLOB type that fits);
* text, and any column holding values of mixed kinds (a legacy INTEGER column with a stray
  ``'n/a'``) -> ``Text`` sized to the longest value, so nothing is lost or converted;
* text in a primary key -> ``String(n)``, also in an empty table (Northwind's
  ``CustomerDemographics``): MariaDB cannot index unbounded TEXT.

Values are read untyped and written as stored. Foreign keys, indexes and views are not copied:
the copy is a fixture for reading, and legacy data does not always satisfy its own constraints.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

__all__ = ["ColumnPlan", "copy_sqlite", "plan_tables"]

_INT32 = 2**31 - 1
_KEY_TEXT = 255  # VARCHAR length of text key columns (MariaDB indexes up to 3072 bytes)


@dataclass(frozen=True)
class ColumnPlan:
    """How one source column is created in the target, and how its values are converted."""

    name: str
    type: sa.types.TypeEngine[Any]
    primary_key: bool
    nullable: bool
    parse: Literal["date", "datetime", "text"] | None = None


def _sqlite_engine(path: str | Path) -> sa.Engine:
    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"no SQLite database at {file}")
    # Read-only: the source is never touched, even by a mistaken statement.
    return sa.create_engine(f"sqlite:///file:{file}?mode=ro&uri=true")


def _storage(conn: sa.Connection, table: str, column: str) -> dict[str, Any]:
    """What ``column`` actually holds: storage classes, integer range, longest text / blob."""
    t = sa.table(table, sa.column(column))
    col = t.c[column]
    kinds = [k for (k,) in conn.execute(sa.select(sa.func.typeof(col)).distinct())]
    stats = conn.execute(
        sa.select(
            sa.func.min(sa.case((sa.func.typeof(col) == "integer", col))),
            sa.func.max(sa.case((sa.func.typeof(col) == "integer", col))),
            sa.func.max(sa.func.length(sa.case((sa.func.typeof(col) == "text", col)))),
            sa.func.max(sa.func.length(sa.case((sa.func.typeof(col) == "blob", col)))),
        ).select_from(t)
    ).one()
    return {
        "kinds": set(kinds) - {"null"},
        "int_min": stats[0],
        "int_max": stats[1],
        "text_len": stats[2] or 0,
        "blob_len": stats[3] or 0,
    }


def _all_parse(conn: sa.Connection, table: str, column: str, parse: Any) -> bool:
    t = sa.table(table, sa.column(column))
    query = sa.select(t.c[column]).where(t.c[column].is_not(None)).distinct()
    for (value,) in conn.execute(query):
        try:
            parse(value)
        except (TypeError, ValueError):
            return False
    return True


def _text(length: int, key: bool) -> sa.types.TypeEngine[Any]:
    if key:
        if length > 3072 // 4:
            raise ValueError(f"a text key of {length} characters cannot be indexed on MariaDB")
        return sa.String(max(length, _KEY_TEXT))
    # A length lets MariaDB choose TEXT / MEDIUMTEXT / LONGTEXT; PostgreSQL and SQLite ignore it.
    return sa.Text(length) if length > 16_000 else sa.Text()


def _column_plan(conn: sa.Connection, table: str, info: dict[str, Any], key: bool) -> ColumnPlan:
    name = info["name"]
    try:
        declared = info["type"].as_generic()
    except NotImplementedError:  # no declared type (SQLite allows that): NullType
        declared = info["type"]
    held = _storage(conn, table, name)
    kinds = held["kinds"]
    nullable = bool(info.get("nullable", True)) and not key

    def plan(type_: sa.types.TypeEngine[Any], parse: Any = None) -> ColumnPlan:
        return ColumnPlan(name, type_, key, nullable, parse)

    # Mixed kinds keep every value, written as text (a stray 12 in a TEXT column becomes "12").
    text = plan(_text(max(held["text_len"], 20 if kinds - {"text"} else 0), key),
                "text" if kinds - {"text"} else None)
    if kinds <= {"integer"} and isinstance(declared, sa.Integer | sa.Numeric | sa.Boolean):
        if (isinstance(declared, sa.Numeric) and not isinstance(declared, sa.Integer | sa.Float)
                and declared.precision is not None):
            return plan(sa.Numeric(declared.precision, declared.scale))
        small = held["int_min"] is None or (held["int_min"] >= -_INT32 - 1 and
                                            held["int_max"] <= _INT32)
        return plan(sa.Integer() if small else sa.BigInteger())
    if kinds <= {"integer", "real"} and isinstance(declared, sa.Numeric | sa.Float):
        if not isinstance(declared, sa.Float) and declared.precision is not None:
            return plan(sa.Numeric(declared.precision, declared.scale))
        return plan(sa.Double())
    if kinds <= {"blob"} and isinstance(declared, sa.LargeBinary | sa.types.NullType):
        length = held["blob_len"]
        return plan(sa.LargeBinary(length) if length > 60_000 else sa.LargeBinary())
    if kinds <= {"text"} and kinds and not key:
        if isinstance(declared, sa.DateTime) and _all_parse(conn, table, name,
                                                             datetime.fromisoformat):
            return plan(sa.DateTime(), "datetime")
        if isinstance(declared, sa.Date) and _all_parse(conn, table, name, date.fromisoformat):
            return plan(sa.Date(), "date")
    if not kinds and not isinstance(declared, sa.types.NullType):
        if key and isinstance(declared, sa.String):
            # An empty text key (Northwind's CustomerDemographics): still indexable on MariaDB.
            return plan(_text(declared.length or 0, key))
        return plan(declared)  # an empty column keeps what was declared
    return text


def plan_tables(source: str | Path, tables: Sequence[str] | None = None
                ) -> dict[str, list[ColumnPlan]]:
    """The target columns of each table to copy, in the source's column order."""
    engine = _sqlite_engine(source)
    try:
        insp = sa.inspect(engine)
        names = list(tables) if tables is not None else insp.get_table_names()
        plans: dict[str, list[ColumnPlan]] = {}
        with engine.connect() as conn:
            for name in names:
                pk = set(insp.get_pk_constraint(name).get("constrained_columns") or ())
                plans[name] = [
                    _column_plan(conn, name, info, info["name"] in pk)
                    for info in insp.get_columns(name)
                ]
        return plans
    finally:
        engine.dispose()


@contextmanager
def _target(target: str | sa.Engine) -> Iterator[sa.Engine]:
    if isinstance(target, sa.Engine):
        yield target
        return
    engine = sa.create_engine(target)
    try:
        yield engine
    finally:
        engine.dispose()


def _convert(plan: ColumnPlan, value: Any) -> Any:
    if value is None or plan.parse is None:
        return value
    if plan.parse == "text":
        return value if isinstance(value, str) else str(value)
    return datetime.fromisoformat(value) if plan.parse == "datetime" else date.fromisoformat(value)


def copy_sqlite(
    source: str | Path,
    target: str | sa.Engine,
    *,
    tables: Sequence[str] | None = None,
    batch_size: int = 1000,
    replace: bool = False,
) -> dict[str, int]:
    """Copy tables of the SQLite file ``source`` into ``target``; returns rows copied per table.

    ``replace``: drop target tables of the same names first (otherwise an existing table is an
    error). Each table is copied in one transaction, so a failed copy leaves no half table.
    """
    plans = plan_tables(source, tables)
    metadata = sa.MetaData()
    for name, columns in plans.items():
        sa.Table(
            name,
            metadata,
            *(
                sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable,
                          autoincrement=False)
                for c in columns
            ),
        )
    counts: dict[str, int] = {}
    engine = _sqlite_engine(source)
    try:
        with _target(target) as dest, engine.connect() as src:
            if replace:
                metadata.drop_all(dest, checkfirst=True)
            for table in metadata.sorted_tables:
                columns = plans[table.name]
                plain = sa.table(table.name, *(sa.column(c.name) for c in columns))
                keys = [plain.c[c.name] for c in columns if c.primary_key] or [
                    sa.literal_column("rowid")
                ]
                query = sa.select(*plain.c).order_by(*keys)
                copied = 0
                with dest.begin() as conn:
                    table.create(conn)
                    result = src.execution_options(yield_per=batch_size).execute(query)
                    with closing(result):
                        for part in result.partitions():
                            rows = [
                                {c.name: _convert(c, v) for c, v in zip(columns, row, strict=True)}
                                for row in part
                            ]
                            conn.execute(table.insert(), rows)
                            copied += len(rows)
                counts[table.name] = copied
    finally:
        engine.dispose()
    return counts
