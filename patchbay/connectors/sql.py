"""SQL databases through SQLAlchemy 2: tables or declared SELECTs, streamed, read-only.

* an entity comes from ``from: {table: NAME}`` (optionally ``schema``) or ``from: {query: SELECT}``;
* rows stream with bounded memory (``yield_per`` + ``partitions()``: server-side cursors on
  PostgreSQL and MySQL), never ``fetchall``;
* positions are keyset values of the sort columns (the id last), so a cursor resumes exactly after
  the last record handed out, without OFFSET;
* filters arrive as :class:`SourceFilter` and become bound parameters, never SQL text;
* lines are fetched per batch of headers with one ``IN`` query, never one query per header.

Columns are selected untyped so legacy values arrive exactly as stored (a DATE column holding
``31/02/2019`` is the mapping's problem to report, not a crash here); reflected types are used
only to decide which filters can be evaluated by the database and to type their parameters.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, NoSuchTableError, SQLAlchemyError

from patchbay.core.connector import (
    Batch,
    Capability,
    ColumnInfo,
    Connector,
    GetRequest,
    ReadRequest,
    Resources,
    SourceFilter,
    SourceOrder,
    SourceSchema,
    SqlSettings,
    TableInfo,
)
from patchbay.core.errors import SourceError, SourceUnavailable
from patchbay.core.filters import Op
from patchbay.core.mapping import LINES_KEY
from patchbay.core.threads import iterate_in_thread

__all__ = ["SqlConnector", "SqlSettings"]

_IN_CHUNK = 500  # header keys per lines query: well under every driver's parameter limit


class _Origin:
    """A resolved ``from:`` block: a selectable plus the real names of its columns."""

    def __init__(self, selectable: sa.FromClause, columns: Mapping[str, sa.ColumnElement[Any]],
                 types: Mapping[str, sa.types.TypeEngine[Any]] | None, label: str) -> None:
        self.selectable = selectable
        self.columns = columns  # path as written in config (case-insensitive lookup) -> column
        self.types = types  # reflected types by real column name; None for declared queries
        self.label = label

    def column(self, path: str) -> sa.ColumnElement[Any]:
        col = self.columns.get(path)
        if col is None:
            col = self.columns.get(path.lower())
        if col is None:
            known = sorted({c.key for c in self.columns.values() if c.key is not None})
            raise KeyError(f"{self.label} has no column {path!r}; columns: {', '.join(known)}")
        return col

    def type_of(self, path: str) -> sa.types.TypeEngine[Any] | None:
        if self.types is None:
            return None
        return self.types.get(self.column(path).key or "")


class SqlConnector(Connector):
    kind = "sql"
    Settings = SqlSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.READ,
            Capability.GET,
            Capability.INCREMENTAL,
            Capability.ORDER,
            Capability.DISCOVER,
            Capability.CHECK,
        }
    )
    pushdown = frozenset(Op)
    resources = frozenset({"sql_engine"})

    def __init__(self, settings: SqlSettings, resources: Resources) -> None:  # type: ignore[override]
        super().__init__(settings, resources)
        self.engine: sa.Engine = resources.sql_engine
        self.schema = settings.schema_
        self._origins: dict[str, _Origin] = {}
        self._lock = threading.Lock()

    # --- origins ---------------------------------------------------------------------------

    def _origin(self, origin: Mapping[str, Any], paths: Sequence[str]) -> _Origin:
        key = repr(sorted(origin.items()))
        with self._lock:
            cached = self._origins.get(key)
        if cached is not None and all(p in cached.columns or p.lower() in cached.columns
                                      for p in paths):
            return cached
        resolved = self._resolve(origin, paths)
        with self._lock:
            self._origins[key] = resolved
        return resolved

    def _resolve(self, origin: Mapping[str, Any], paths: Sequence[str]) -> _Origin:
        if "table" in origin:
            name = str(origin["table"])
            schema = origin.get("schema", self.schema)
            try:
                with self.engine.connect() as conn:
                    table = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema)
            except NoSuchTableError:
                tables = sa.inspect(self.engine).get_table_names(schema=schema)
                raise SourceError(
                    self.res.source,
                    f"no table {name!r}; tables: {', '.join(sorted(tables))}",
                    owner=self.res.owner,
                ) from None
            # Untyped twins of the reflected columns: values arrive as the driver gives them.
            plain = sa.table(name, *(sa.column(c.name) for c in table.columns), schema=schema)
            columns: dict[str, sa.ColumnElement[Any]] = {}
            for col in plain.columns:
                columns.setdefault(col.name, col)
                columns.setdefault(col.name.lower(), col)
            types = {c.name: c.type for c in table.columns}
            return _Origin(plain, columns, types, f"table {name!r}")
        if "query" in origin:
            wanted = list(dict.fromkeys(paths))
            text = sa.text(str(origin["query"])).columns(*(sa.column(p) for p in wanted))
            sub = text.subquery("q")
            return _Origin(sub, {p: sub.c[p] for p in wanted}, None, "the declared query")
        raise SourceError(
            self.res.source, "from: needs 'table' or 'query'", owner=self.res.owner
        )

    # --- filters ---------------------------------------------------------------------------

    def accepts(self, request: ReadRequest, condition: SourceFilter) -> bool:
        if condition.op not in self.pushdown:
            return False
        origin = self._origin(request.origin, request.paths)
        col_type = origin.type_of(condition.path)
        if col_type is None:  # declared query: no types to check a parameter against
            return False
        if condition.fold or condition.op is Op.CONTAINS:
            # Case folding differs between Python and databases outside ASCII (SQLite's
            # lower() and LIKE fold only ASCII): push only what the database folds the same.
            values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
            return _python_type(col_type) is str and all(
                isinstance(v, str) and v.isascii() for v in values
            )
        if condition.op is Op.ISNULL:
            return True
        values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
        return all(_coerce(v, col_type) is not _NO for v in values)

    def _where(self, origin: _Origin, condition: SourceFilter) -> sa.ColumnElement[bool]:
        col = origin.column(condition.path)
        col_type = origin.type_of(condition.path) or sa.types.NullType()
        op = condition.op
        if op is Op.ISNULL:
            return col.is_(None) if condition.value else col.is_not(None)
        if condition.fold or op is Op.CONTAINS:
            needle = str(condition.value).lower()
            escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return sa.func.lower(col).like(sa.literal(f"%{escaped}%", sa.String()), escape="\\")

        def bound(value: Any) -> sa.BindParameter[Any]:
            return sa.literal(_coerce(value, col_type), col_type)

        if op is Op.IN:
            return col.in_([bound(v) for v in condition.value])
        comparisons = {
            Op.EQ: col.__eq__, Op.NE: col.__ne__, Op.GT: col.__gt__,
            Op.GTE: col.__ge__, Op.LT: col.__lt__, Op.LTE: col.__le__,
        }
        return comparisons[op](bound(condition.value))  # type: ignore[no-any-return]

    # --- reading ---------------------------------------------------------------------------

    def _order(self, request: ReadRequest) -> list[SourceOrder]:
        order = list(request.order)
        for path in request.id_paths:
            if all(o.path != path for o in order):
                order.append(SourceOrder(path))
        return order

    def _select(self, request: ReadRequest) -> tuple[sa.Select[Any], list[str], list[str]]:
        origin = self._origin(request.origin, request.paths)
        order = self._order(request)
        wanted = list(dict.fromkeys([*request.paths, *(o.path for o in order)]))
        cols = [origin.column(p).label(p) for p in wanted]
        query = sa.select(*cols).select_from(origin.selectable)
        for condition in request.filters:
            query = query.where(self._where(origin, condition))
        if request.position is not None:
            query = query.where(self._after(origin, order, request.position))
        for o in order:
            col = origin.column(o.path)
            # NULLs last in both directions, the same on every database.
            query = query.order_by(col.is_(None), col.desc() if o.descending else col.asc())
        return query, wanted, [o.path for o in order]

    def _after(self, origin: _Origin, order: list[SourceOrder], position: Any
               ) -> sa.ColumnElement[bool]:
        """Rows strictly after ``position`` in the (NULLs-last) sort order: a keyset predicate."""
        values = list(position)
        clauses: list[sa.ColumnElement[bool]] = []
        # (k1 after v1) OR (k1 = v1 AND k2 after v2) OR ...; a NULL position value means the
        # row sorts among the NULLs, after every non-NULL value.
        equal_so_far: list[sa.ColumnElement[bool]] = []
        for o, value in zip(order, values, strict=True):
            col = origin.column(o.path)
            if value is None:
                after: sa.ColumnElement[bool] = sa.false()
                same = col.is_(None)
            else:
                bigger = col < value if o.descending else col > value
                after = sa.or_(bigger, col.is_(None))
                same = col == value
            clauses.append(sa.and_(*equal_so_far, after))
            equal_so_far.append(same)
        return sa.or_(*clauses)

    async def read(self, request: ReadRequest) -> AsyncIterator[Batch]:
        query, wanted, keys = self._select(request)
        size = request.batch_size

        def rows() -> Iterator[list[dict[str, Any]]]:
            with self._connect() as conn:
                result = conn.execution_options(yield_per=size).execute(query)
                names = list(result.keys())
                for part in result.partitions():
                    batch = [dict(zip(names, row, strict=True)) for row in part]
                    if request.lines is not None:
                        self._attach_lines(conn, request, batch)
                    yield batch

        async for batch in iterate_in_thread(self._guard(rows)):
            yield Batch(batch, _keyset(batch, keys))

    def _attach_lines(self, conn: sa.Connection, request: ReadRequest | GetRequest,
                      headers: list[dict[str, Any]]) -> None:
        lines = request.lines
        assert lines is not None
        origin = self._origin(lines.origin, [*lines.key, *lines.paths])
        wanted = list(dict.fromkeys([*lines.key, *lines.paths, *lines.order_by]))
        cols = [origin.column(p).label(p) for p in wanted]
        key_cols = [origin.column(k) for k in lines.key]
        by_key: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        keys = list(dict.fromkeys(tuple(h[p] for p in request.id_paths) for h in headers))
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            if len(key_cols) == 1:
                match = key_cols[0].in_([k[0] for k in chunk])
            else:
                match = sa.tuple_(*key_cols).in_(chunk)
            query = (
                sa.select(*cols).select_from(origin.selectable).where(match)
                .order_by(*key_cols, *(origin.column(p) for p in lines.order_by))
            )
            for row in conn.execute(query).mappings():
                by_key[tuple(row[k] for k in lines.key)].append(dict(row))
        for header in headers:
            header[LINES_KEY] = by_key.get(tuple(header[p] for p in request.id_paths), [])

    async def get(self, request: GetRequest) -> Mapping[str, Any] | None:
        origin = self._origin(request.origin, [*request.id_paths, *request.paths])
        wanted = list(dict.fromkeys([*request.id_paths, *request.paths]))
        query = sa.select(*(origin.column(p).label(p) for p in wanted)).select_from(
            origin.selectable
        )
        for path, text in zip(request.id_paths, request.id_values, strict=True):
            col_type = origin.type_of(path)
            value = text if col_type is None else _coerce(text, col_type)
            if value is _NO:
                return None  # "abc" can never be the id of an INTEGER key
            query = query.where(origin.column(path) == value)

        def fetch() -> Iterator[dict[str, Any] | None]:
            with self._connect() as conn:
                row = conn.execute(query.limit(2)).mappings().first()
                found = dict(row) if row is not None else None
                if found is not None and request.lines is not None:
                    self._attach_lines(conn, request, [found])
                yield found

        async for found in iterate_in_thread(self._guard(fetch), buffer=1):
            return found
        return None

    async def discover(self) -> SourceSchema:
        def inspect() -> Iterator[SourceSchema]:
            insp = sa.inspect(self.engine)
            tables = []
            names = insp.get_table_names(schema=self.schema) + insp.get_view_names(
                schema=self.schema
            )
            for name in sorted(names):
                cols = tuple(
                    ColumnInfo(c["name"], str(c["type"]), bool(c.get("nullable", True)))
                    for c in insp.get_columns(name, schema=self.schema)
                )
                pk = insp.get_pk_constraint(name, schema=self.schema) or {}
                tables.append(TableInfo(name, cols, tuple(pk.get("constrained_columns") or ())))
            yield SourceSchema(tuple(tables))

        async for schema in iterate_in_thread(self._guard(inspect), buffer=1):
            return schema
        raise AssertionError("discover yielded nothing")

    async def check(self) -> None:
        def ping() -> Iterator[None]:
            with self._connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            yield None

        async for _ in iterate_in_thread(self._guard(ping), buffer=1):
            pass

    # --- plumbing --------------------------------------------------------------------------

    def _connect(self) -> sa.Connection:
        return self.engine.connect()

    def _guard(self, make: Any) -> Any:
        """Wrap a blocking generator so driver errors become SourceErrors naming the source."""
        source, owner = self.res.source, self.res.owner

        def guarded() -> Iterator[Any]:
            try:
                yield from make()
            except DBAPIError as exc:
                message = _driver_message(exc)
                if exc.connection_invalidated or _is_connect_error(exc):
                    raise SourceUnavailable(source, message, owner=owner) from None
                raise SourceError(source, message, owner=owner) from None
            except KeyError as exc:  # a configured column the table does not have
                raise SourceError(source, str(exc.args[0]), owner=owner) from None
            except SQLAlchemyError as exc:
                raise SourceError(source, _driver_message(exc), owner=owner) from None

        return guarded


_NO = object()


def _python_type(col_type: sa.types.TypeEngine[Any]) -> type | None:
    try:
        return col_type.python_type
    except NotImplementedError:
        return None


def _coerce(value: Any, col_type: sa.types.TypeEngine[Any]) -> Any:
    """``value`` as the column's Python type, or ``_NO`` when it cannot be compared safely."""
    target = _python_type(col_type)
    if target is None:
        return _NO
    if isinstance(value, bool) or target is bool:
        return value if isinstance(value, bool) and target is bool else _NO
    if target is str:
        return value if isinstance(value, str) else _NO
    if target in (int, float, Decimal):
        if isinstance(value, str):
            try:
                value = Decimal(value.strip())
            except ArithmeticError:
                return _NO
        if not isinstance(value, int | Decimal | float):
            return _NO
        if target is int:
            return int(value) if value == int(value) else _NO
        return value
    if target is datetime:
        return value if isinstance(value, datetime) else _NO
    if target is date:
        return value if isinstance(value, date) and not isinstance(value, datetime) else _NO
    return _NO


def _keyset(batch: list[dict[str, Any]], keys: list[str]) -> Any:
    def position_after(index: int) -> list[Any]:
        row = batch[index]
        return [row[k] for k in keys]

    return position_after


def _driver_message(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _is_connect_error(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(
        marker in text
        for marker in (
            "connection refused", "could not connect", "can't connect", "unable to open",
            "connection failed", "server closed", "lost connection", "timeout", "timed out",
            "name or service not known", "no such host",
        )
    )
