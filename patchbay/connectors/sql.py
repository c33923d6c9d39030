"""SQL databases through SQLAlchemy 2: tables or declared SELECTs, streamed, read-only.

* an entity comes from ``from: {table: NAME}`` (optionally ``schema``) or ``from: {query: SELECT}``;
  table names are taken as written (``CUSTOMERS`` is the quoted, case-sensitive ``"CUSTOMERS"`` on
  PostgreSQL), falling back to the one table whose name matches ignoring case; a declared query is
  sent verbatim (a ``:`` in it is not a bind parameter);
* rows stream with bounded memory (``yield_per`` + ``partitions()``: server-side cursors on
  PostgreSQL and MySQL), never ``fetchall``;
* positions are keyset values of the sort columns (the id last), so a cursor resumes exactly after
  the last record handed out, without OFFSET;
* filters arrive as :class:`SourceFilter` and become bound parameters, never SQL text;
* lines are fetched per batch of headers with one ``IN`` query, never one query per header, on a
  second connection (MySQL cannot run a query while a server-side cursor is open);
* reads, ``get``, ``discover``, ``describe`` and ``check`` run in a worker thread (table
  reflection included) under the source's resilience policy (``Resources.sql_guard``: circuit
  breaker, retries of dropped connections); only the final failure becomes a
  :class:`SourceError` / :class:`SourceUnavailable` naming the source and its owner. A read is
  retried only until its first batch: re-running the query from the same keyset position is
  safe then; a connection lost after rows were handed out surfaces as ``SourceUnavailable`` and
  the caller's cursor resumes. A connection that cannot be opened at all (refused, unreachable)
  counts as dropped, so a database that is down opens the breaker and then fails fast without
  connecting. Planning (``accepts``, ``can_order``) is synchronous by contract and reflects a
  table once, under the same policy, blocking the caller; when the database cannot be reached
  then, filters stay in memory and the read reports the failure.

Columns are selected untyped so legacy values arrive exactly as stored (a DATE column holding
``31/02/2019`` is the mapping's problem to report, not a crash here); reflected types are used
only to decide which filters can be evaluated by the database and to type their parameters.

The database must answer as Python would on the same values, or narrow less - never more:

* text is compared and sorted code point by code point (``COLLATE BINARY`` on SQLite,
  ``COLLATE "C"`` on PostgreSQL, binary strings on MySQL/MariaDB), whatever the column's collation,
  for ``ne``, ``gt``/``gte``/``lt``/``lte`` and for sorting. ``eq``/``in`` use the column as it is:
  a case- or accent-insensitive collation only finds more rows, which the Hub re-checks;
* ``contains`` (case-insensitive) goes to the database only for ASCII needles, and the column is
  folded as ``str.casefold`` folds it (``ß`` -> ``ss``, ``ﬁ`` -> ``fi``, ...) before ``lower()``;
* on floating-point columns only numbers a double holds exactly as written go to the database
  (``0.5``, not ``0.1``): the database compares doubles, Python the exact values;
* columns of a declared query have no known types: their filters stay in memory and they cannot
  be sorted on (an ``order_by`` across sources is then an explicit error, not a wrong order).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import threading
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, NoSuchTableError, SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

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
from patchbay.core.filters import ORDERING_OPS, Op
from patchbay.core.mapping import LINES_KEY
from patchbay.core.threads import finish_in_thread, iterate_in_thread
from patchbay.resilience._sql import is_disconnect

__all__ = ["SqlConnector", "SqlSettings"]

T = TypeVar("T")

_IN_CHUNK = 500  # header keys per lines query: well under every driver's parameter limit

# The characters whose str.casefold() holds ASCII letters that SQL lower() does not give (lower()
# folds only ASCII on SQLite, and never expands ß to ss anywhere): the column is rewritten with
# these before lower(), so an ASCII needle matches what Python matches (tests/connectors/
# test_sql.py recomputes the table for the running Python's Unicode version).
CASEFOLD_TO_ASCII: tuple[tuple[str, str], ...] = tuple(
    (char, char.casefold())
    for char in (
        "\u00df", "\u0130", "\u0149", "\u017f", "\u01f0", "\u1e96", "\u1e97", "\u1e98", "\u1e99",
        "\u1e9a", "\u1e9e", "\u212a", "\ufb00", "\ufb01", "\ufb02", "\ufb03", "\ufb04", "\ufb05",
        "\ufb06",
    )
)
# Dialects where _Bytewise can make text compare as Python compares str (code point order).
_BYTEWISE = frozenset({"sqlite", "postgresql", "mysql", "mariadb"})
_TEXT_ORDER_OPS = ORDERING_OPS | {Op.NE}


class _Bytewise(sa.sql.expression.ColumnElement[Any]):
    """A text expression compared and sorted by code point, whatever the column's collation."""

    inherit_cache = True
    # SQLAlchemy's cache key of the element (a list on its base class).
    _traverse_internals = [("inner", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, inner: sa.ColumnElement[Any]) -> None:
        self.inner = inner
        self.type = inner.type


@compiles(_Bytewise)
def _bytewise_default(element: _Bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    # Never used for comparisons elsewhere (accepts and can_order refuse), only a safe rendering.
    return compiler.process(element.inner, **kw)


@compiles(_Bytewise, "sqlite")
def _bytewise_sqlite(element: _Bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    # BINARY compares UTF-8 bytes, which order as code points.
    return f"({compiler.process(element.inner, **kw)} COLLATE BINARY)"


@compiles(_Bytewise, "postgresql")
def _bytewise_postgresql(element: _Bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.inner, **kw)} COLLATE "C")'


@compiles(_Bytewise, "mysql")
@compiles(_Bytewise, "mariadb")
def _bytewise_mysql(element: _Bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    # Binary strings compare byte by byte without PAD SPACE ('a ' > 'a', as in Python).
    return f"CAST(CONVERT({compiler.process(element.inner, **kw)} USING utf8mb4) AS BINARY)"


class _Origin:
    """A resolved ``from:`` block: a selectable plus the real names of its columns."""

    def __init__(self, selectable: sa.FromClause, columns: Mapping[str, sa.ColumnElement[Any]],
                 types: Mapping[str, sa.types.TypeEngine[Any]] | None, label: str) -> None:
        self.selectable = selectable
        self.columns = columns  # path as written in config (case-insensitive lookup) -> column
        self.types = types  # reflected types by real column name; None for declared queries
        self.label = label

    def has(self, path: str) -> bool:
        return path in self.columns or path.lower() in self.columns

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

    def is_text(self, path: str) -> bool:
        col_type = self.type_of(path)
        return col_type is not None and _python_type(col_type) is str


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

    def __init__(self, settings: SqlSettings, resources: Resources) -> None:
        super().__init__(settings, resources)
        self.engine: sa.Engine = resources.sql_engine
        self.schema = settings.schema_
        if not sa.event.contains(self.engine, "handle_error", _close_cursor_on_disconnect):
            sa.event.listen(self.engine, "handle_error", _close_cursor_on_disconnect)
        self._origins: dict[str, _Origin] = {}
        self._abandoned: set[asyncio.Future[Any]] = set()  # reads stopped while opening
        self._lock = threading.Lock()

    # --- origins ---------------------------------------------------------------------------

    def _origin(self, origin: Mapping[str, Any], paths: Sequence[str]) -> _Origin:
        """The resolved origin (cached); reflects the table, so call it off the event loop."""
        key = repr(sorted(origin.items()))
        with self._lock:
            cached = self._origins.get(key)
        if cached is not None and all(cached.has(p) for p in paths):
            return cached
        if cached is not None and cached.types is None:  # a declared query: keep every column
            paths = [*cached.columns, *paths]
        resolved = self._resolve(origin, paths)
        with self._lock:
            self._origins[key] = resolved
        return resolved

    def _known_origin(self, origin: Mapping[str, Any], paths: Sequence[str]) -> _Origin | None:
        """The origin for planning (``accepts``, ``can_order``); None when it cannot be resolved
        now. The read then reports why, as a SourceError naming the source."""
        key = repr(sorted(origin.items()))
        with self._lock:
            cached = self._origins.get(key)
        if cached is not None and all(cached.has(p) for p in paths):
            return cached
        try:
            return self._plan_call(lambda: self._origin(origin, paths))
        except (SQLAlchemyError, SourceError, KeyError) as exc:
            self.res.logger.debug("%s: cannot resolve %s for planning: %s", self.res.source,
                                  dict(origin), exc)
            return None

    def _resolve(self, origin: Mapping[str, Any], paths: Sequence[str]) -> _Origin:
        if "table" in origin:
            name = str(origin["table"])
            schema = origin.get("schema", self.schema)
            with self._connect() as conn:
                table = self._reflect(conn, name, schema)
            # Untyped twins of the reflected columns: values arrive as the driver gives them.
            plain = sa.table(table.name, *(sa.column(c.name) for c in table.columns),
                             schema=schema)
            columns: dict[str, sa.ColumnElement[Any]] = {}
            for col in plain.columns:
                columns.setdefault(col.name, col)
                columns.setdefault(col.name.lower(), col)
            types = {c.name: c.type for c in table.columns}
            return _Origin(plain, columns, types, f"table {name!r}")
        if "query" in origin:
            wanted = list(dict.fromkeys(paths))
            # Verbatim: "\:" keeps a ':' in the SQL (a time literal, a PostgreSQL ::cast) from
            # being read as a bind parameter.
            sql = str(origin["query"]).replace(":", "\\:")
            text = sa.text(sql).columns(*(sa.column(p) for p in wanted))
            sub = text.subquery("q")
            return _Origin(sub, {p: sub.c[p] for p in wanted}, None, "the declared query")
        raise SourceError(
            self.res.source, "from: needs 'table' or 'query'", owner=self.res.owner
        )

    def _reflect(self, conn: sa.Connection, name: str, schema: str | None) -> sa.Table:
        try:
            return sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema)
        except NoSuchTableError:
            pass
        insp = sa.inspect(conn)
        tables = insp.get_table_names(schema=schema) + insp.get_view_names(schema=schema)
        # CUSTOMERS written for a PostgreSQL table created unquoted (customers), or the reverse.
        same = [t for t in tables if t.lower() == name.lower()]
        if len(same) == 1:
            return sa.Table(same[0], sa.MetaData(), autoload_with=conn, schema=schema)
        raise SourceError(
            self.res.source,
            f"no table {name!r}; tables: {', '.join(sorted(tables))}",
            owner=self.res.owner,
        )

    # --- filters ---------------------------------------------------------------------------

    def accepts(self, request: ReadRequest, condition: SourceFilter) -> bool:
        if condition.op not in self.pushdown:
            return False
        origin = self._known_origin(request.origin, request.paths)
        if origin is None or not origin.has(condition.path):
            return False
        col_type = origin.type_of(condition.path)
        if col_type is None:  # declared query: no types to check a parameter against
            return False
        values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
        if condition.fold or condition.op is Op.CONTAINS:
            # Case folding differs between Python and databases outside ASCII (SQLite's
            # lower() and LIKE fold only ASCII): push only what the database folds the same.
            return _python_type(col_type) is str and all(
                isinstance(v, str) and v.isascii() for v in values
            )
        if condition.op is Op.ISNULL:
            return True
        if (condition.op in _TEXT_ORDER_OPS and _python_type(col_type) is str
                and self.engine.dialect.name not in _BYTEWISE):
            return False  # no way to make this database compare text as Python does
        return all(_coerce(v, col_type) is not _NO for v in values)

    def can_order(self, request: ReadRequest, order: SourceOrder) -> bool:
        origin = self._known_origin(request.origin, request.paths)
        if origin is None:
            return True  # cannot tell now; the read reports why the source fails
        if not origin.has(order.path) or origin.type_of(order.path) is None:
            return False  # a declared query's column: its order may not be Python's
        return not origin.is_text(order.path) or self.engine.dialect.name in _BYTEWISE

    def _where(self, origin: _Origin, condition: SourceFilter) -> sa.ColumnElement[bool]:
        col = origin.column(condition.path)
        col_type = origin.type_of(condition.path) or sa.types.NullType()
        op = condition.op
        if op is Op.ISNULL:
            return col.is_(None) if condition.value else col.is_not(None)
        if condition.fold or op is Op.CONTAINS:
            needle = str(condition.value).lower()
            escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            folded: sa.ColumnElement[Any] = col
            for char, fold in CASEFOLD_TO_ASCII:
                folded = sa.func.replace(folded, char, fold)
            return sa.func.lower(folded).like(sa.literal(f"%{escaped}%", sa.String()),
                                              escape="\\")

        def bound(value: Any) -> sa.ColumnElement[Any]:
            return sa.literal(_coerce(value, col_type), col_type)

        if op is Op.IN:
            return col.in_([bound(v) for v in condition.value])
        if op is Op.EQ:
            return col == bound(condition.value)
        if _python_type(col_type) is str:
            # ne and order comparisons by code point: under a case-insensitive collation
            # 'ABC' <> 'abc' would be false and 'a' < 'B' true, unlike Python.
            left: sa.ColumnElement[Any] = _Bytewise(col)
            right: sa.ColumnElement[Any] = _Bytewise(bound(condition.value))
        else:
            left, right = col, bound(condition.value)
        comparisons: dict[Op, Callable[[Any], sa.ColumnElement[bool]]] = {
            Op.NE: left.__ne__, Op.GT: left.__gt__,
            Op.GTE: left.__ge__, Op.LT: left.__lt__, Op.LTE: left.__le__,
        }
        return comparisons[op](right)

    # --- reading ---------------------------------------------------------------------------

    def _order(self, request: ReadRequest) -> list[SourceOrder]:
        order = list(request.order)
        for path in request.id_paths:
            if all(o.path != path for o in order):
                order.append(SourceOrder(path))
        return order

    def _select(self, request: ReadRequest) -> sa.Select[Any]:
        origin = self._origin(request.origin, request.paths)
        order = self._order(request)
        wanted = list(dict.fromkeys([*request.paths, *(o.path for o in order)]))
        cols = [origin.column(p).label(p) for p in wanted]
        query = sa.select(*cols).select_from(origin.selectable)
        for condition in request.filters:
            query = query.where(self._where(origin, condition))
        explicit = {o.path for o in request.order}
        keys = [(o, *self._sort_key(origin, o, o.path in explicit)) for o in order]
        if request.position is not None:
            query = query.where(_after(keys, request.position))
        for o, nullish, key in keys:
            # NULLs last in both directions, the same on every database.
            query = query.order_by(nullish, key.desc() if o.descending else key.asc())
        return query

    def _sort_key(self, origin: _Origin, order: SourceOrder, explicit: bool
                  ) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[Any]]:
        """What marks a row as sorting among the NULLs, and the expression to sort by.

        A requested order on text sorts by code point, as the Hub's merge does, and with
        ``blank_is_null`` blank text sorts with the NULLs (the mapping makes it null; SQL's
        TRIM removes spaces only, so a value of tabs alone still sorts as text). The id
        tie-breakers keep the column's own order (unique under its collation, index-friendly).
        """
        col = origin.column(order.path)
        nullish: sa.ColumnElement[bool] = col.is_(None)
        if explicit and origin.is_text(order.path):
            if order.blank_is_null:
                nullish = sa.or_(col.is_(None), sa.func.trim(col) == "")
            return nullish, _Bytewise(col)
        return nullish, col

    async def read(self, request: ReadRequest) -> AsyncGenerator[Batch, None]:
        keys = [o.path for o in self._order(request)]

        def start() -> _Stream:
            """Reflect, run the query and fetch the first batch: everything that may be retried
            (nothing was handed out yet, and the keyset position makes a re-run exact)."""
            stream = _Stream(self, request)
            try:
                stream.start()
            except BaseException:
                stream.close_quietly()
                raise
            return stream

        # Closed before the read returns, whatever happens to it: its server-side cursor
        # (psycopg warns about one left open, MySQL cannot run the next query) and connections.
        # A caller that stops while the read is still opening (a full page, a failed sibling
        # source) cannot stop the worker thread: the stream it opens is closed when it is done.
        opening = asyncio.ensure_future(self._call(start))
        try:
            stream = await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(_close_when_opened)
            self._abandoned.add(opening)
            opening.add_done_callback(self._abandoned.discard)
            raise
        in_place = self.engine.dialect.name == "sqlite"
        try:
            first = stream.first
            if first is None:
                return
            yield Batch(first, _keyset(first, keys))

            def rest() -> Iterator[list[dict[str, Any]]]:
                while (batch := stream.next_batch()) is not None:
                    yield batch

            # From here on a lost connection is not retried: it surfaces as SourceUnavailable
            # and the caller's cursor resumes after the last record handed out.
            if in_place:
                # SQLite runs in this process: a reader thread would only fight the mapping for
                # the GIL (about a fifth of the time of a full read). Read in place, one batch
                # per step, giving the event loop a turn between batches.
                with contextlib.closing(self._translating(rest)()) as reader:
                    for batch in reader:
                        yield Batch(batch, _keyset(batch, keys))
                        await asyncio.sleep(0)
                return
            # aclosing: when the caller stops early (a page is full), the reader thread is
            # stopped now, not whenever the generator is garbage-collected.
            async with contextlib.aclosing(
                iterate_in_thread(self._translating(rest))
            ) as batches:
                async for batch in batches:
                    yield Batch(batch, _keyset(batch, keys))
        finally:
            if in_place:
                stream.close_quietly()
            else:
                # Not cut short by a cancellation arriving meanwhile (a Hub stopping a source's
                # prefetch as this read ends after its last needed batch): the server-side
                # cursor and the connections are released before the read is over, never left
                # to the garbage collector, open, perhaps after the engine was disposed.
                await finish_in_thread(stream.close_quietly)

    def _attach_lines(self, conn: sa.Connection, request: ReadRequest | GetRequest,
                      headers: list[dict[str, Any]]) -> None:
        lines = request.lines
        assert lines is not None
        wanted = list(dict.fromkeys([*lines.key, *lines.paths, *lines.order_by]))
        origin = self._origin(lines.origin, wanted)
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
        def fetch() -> dict[str, Any] | None:
            wanted = list(dict.fromkeys([*request.id_paths, *request.paths]))
            origin = self._origin(request.origin, wanted)
            query = sa.select(*(origin.column(p).label(p) for p in wanted)).select_from(
                origin.selectable
            )
            for path, text in zip(request.id_paths, request.id_values, strict=True):
                col = origin.column(path)
                col_type = origin.type_of(path)
                if col_type is None:
                    # A declared query's column of unknown type: compare the text the id was
                    # made of (an INTEGER = VARCHAR comparison fails on PostgreSQL).
                    query = query.where(sa.cast(col, sa.String()) == text)
                    continue
                value = _coerce(text, col_type)
                if value is _NO:
                    return None  # "abc" can never be the id of an INTEGER key
                query = query.where(col == sa.literal(value, col_type))
            with self._connect() as conn:
                row = conn.execute(query.limit(2)).mappings().first()
                found = dict(row) if row is not None else None
                if found is not None and request.lines is not None:
                    self._attach_lines(conn, request, [found])
            return found

        return await self._call(fetch)

    async def discover(self) -> SourceSchema:
        def inspect() -> SourceSchema:
            with self._connect() as conn:
                insp = sa.inspect(conn)
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
                    tables.append(
                        TableInfo(name, cols, tuple(pk.get("constrained_columns") or ()))
                    )
            return SourceSchema(tuple(tables))

        return await self._call(inspect)

    async def close(self) -> None:
        """Wait for reads that were stopped while still opening: their streams close then."""
        if self._abandoned:
            await asyncio.gather(*self._abandoned, return_exceptions=True)

    async def describe(self, origin: Mapping[str, Any]) -> TableInfo | None:
        """A table's columns and types as they are now; a declared query's column names (types
        are only known once it runs: ``"unknown"``). A table that is gone has no columns."""

        def inspect() -> TableInfo:
            with self._connect() as conn:
                if "table" in origin:
                    name = str(origin["table"])
                    try:
                        table = self._reflect(conn, name, origin.get("schema", self.schema))
                    except SourceError:
                        return TableInfo(name, ())
                    return TableInfo(
                        table.name,
                        tuple(ColumnInfo(c.name, str(c.type), bool(c.nullable))
                              for c in table.columns),
                        tuple(c.name for c in table.primary_key.columns),
                    )
                sql = str(origin["query"]).replace(":", "\\:")
                probe = sa.select(sa.text("*")).select_from(
                    sa.text(f"({sql}) AS patchbay_probe")).where(sa.false())
                names = list(conn.execute(probe).keys())
                return TableInfo("(declared query)", tuple(ColumnInfo(n, "unknown") for n in names))

        return await self._call(inspect)

    async def check(self) -> None:
        def ping() -> None:
            with self._connect() as conn:
                conn.execute(sa.text("SELECT 1"))

        await self._call(ping)

    # --- plumbing --------------------------------------------------------------------------

    def _connect(self) -> sa.Connection:
        """A pooled connection (pre-pinged). Failing to open one at all (refused, unreachable,
        a missing SQLite file) is reported as a dropped connection, so the resilience policy
        retries it and the breaker counts it; other connect errors (a wrong password) are the
        database answering."""
        try:
            return self.engine.connect()
        except DBAPIError as exc:
            if exc.connection_invalidated or not _is_connect_error(exc):
                raise
            raise ConnectionFailed(exc) from exc

    async def _call(self, fn: Callable[[], T]) -> T:
        """Run a blocking operation in a worker thread, under the source's resilience policy
        when the Hub gave one, and translate its final failure into a SourceError."""
        guard = self.res.sql_guard
        try:
            if guard is None:
                return await asyncio.to_thread(fn)
            outcome: _Outcome[T] = await guard(_answering(fn))
            return outcome.unwrap()
        except SourceUnavailable as exc:
            cause = exc.__cause__
            if exc.source != self.res.source or not isinstance(cause, SQLAlchemyError):
                raise  # the breaker failing fast: already says why
            # run_sql gave up: say what the driver said too, and drop the chain (a DBAPIError
            # carries the statement and its parameters).
            raise SourceUnavailable(
                self.res.source, f"{_driver_message(cause)}; {exc.detail}", owner=self.res.owner
            ) from None
        except (SQLAlchemyError, KeyError) as exc:
            raise self._translate(exc) from None

    def _plan_call(self, fn: Callable[[], T]) -> T:
        """``_call`` for synchronous planning: the policy's coroutine runs in a helper thread
        with its own event loop (the caller's loop is busy running us)."""
        if self.res.sql_guard is None:
            try:
                return fn()
            except (SQLAlchemyError, KeyError) as exc:
                raise self._translate(exc) from None
        with concurrent.futures.ThreadPoolExecutor(1, "patchbay-plan") as pool:
            return pool.submit(asyncio.run, self._call(fn)).result()

    def _translate(self, exc: SQLAlchemyError | KeyError) -> SourceError:
        source, owner = self.res.source, self.res.owner
        if isinstance(exc, KeyError):  # a configured column the table does not have
            return SourceError(source, str(exc.args[0]), owner=owner)
        message = _driver_message(exc)
        if is_disconnect(exc) or (isinstance(exc, DBAPIError) and _is_connect_error(exc)):
            return SourceUnavailable(source, message, owner=owner)
        return SourceError(source, message, owner=owner)

    def _translating(
        self, make: Callable[[], Iterator[T]]
    ) -> Callable[[], Generator[T, None, None]]:
        """Wrap a blocking generator so driver errors become SourceErrors naming the source."""

        def translated() -> Generator[T, None, None]:
            try:
                yield from make()
            except (SQLAlchemyError, KeyError) as exc:
                raise self._translate(exc) from None

        return translated


class ConnectionFailed(sa.exc.DisconnectionError):
    """A connection to the database could not be opened (see ``SqlConnector._connect``)."""

    def __init__(self, error: DBAPIError) -> None:
        self.orig = error.orig
        super().__init__(_driver_message(error))


class _Outcome(Generic[T]):
    """What an operation returned, or the error the database answered with (a missing table or
    column): both mean the database is up, which the breaker must hear."""

    __slots__ = ("error", "value")

    def __init__(self, value: T | None = None, error: Exception | None = None) -> None:
        self.value = value
        self.error = error

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def _answering(fn: Callable[[], T]) -> Callable[[], _Outcome[T]]:
    def attempt() -> _Outcome[T]:
        try:
            return _Outcome(fn())
        except (SourceError, KeyError) as exc:
            return _Outcome(error=exc)

    return attempt


class _Stream:
    """The blocking side of one read: its connections, its result, its batches."""

    def __init__(self, connector: SqlConnector, request: ReadRequest) -> None:
        self.connector = connector
        self.request = request
        self.stack = contextlib.ExitStack()
        self.parts: Iterator[Sequence[sa.Row[Any]]] = iter(())
        self.names: list[str] = []
        self.lines_conn: sa.Connection | None = None
        self.first: list[dict[str, Any]] | None = None

    def start(self) -> None:
        query = self.connector._select(self.request)
        conn = self.stack.enter_context(self.connector._connect())
        result = conn.execution_options(yield_per=self.request.batch_size).execute(query)
        # Closed before its connection (an ExitStack unwinds in reverse).
        self.stack.callback(result.close)
        self.names = list(result.keys())
        self.parts = result.partitions()
        self.first = self.next_batch()

    def next_batch(self) -> list[dict[str, Any]] | None:
        part = next(self.parts, None)
        if part is None:
            return None
        batch = [dict(zip(self.names, row)) for row in part]  # noqa: B905 - same width
        if self.request.lines is not None:
            # Another connection: MySQL cannot query while a server-side cursor is open, and
            # would drop the rest of the stream.
            if self.lines_conn is None:
                self.lines_conn = self.stack.enter_context(self.connector._connect())
            self.connector._attach_lines(self.lines_conn, self.request, batch)
        return batch

    def close_quietly(self) -> None:
        """Release the result and connections; a connection already lost cannot fail this."""
        with contextlib.suppress(SQLAlchemyError):
            self.stack.close()


def _after(keys: Sequence[tuple[SourceOrder, sa.ColumnElement[bool], sa.ColumnElement[Any]]],
           position: Any) -> sa.ColumnElement[bool]:
    """Rows strictly after ``position`` in the (NULLs-last) sort order: a keyset predicate.

    ``keys`` holds, per sort column, its order, what marks a row as NULL-like there, and the
    expression sorted by."""
    values = list(position)
    clauses: list[sa.ColumnElement[bool]] = []
    # (k1 after v1) OR (k1 = v1 AND k2 after v2) OR ...; a NULL position value means the
    # row sorts among the NULLs, after every non-NULL value.
    equal_so_far: list[sa.ColumnElement[bool]] = []
    for (o, nullish, key), value in zip(keys, values, strict=True):
        after: sa.ColumnElement[bool]
        same: sa.ColumnElement[bool]
        blank = o.blank_is_null and isinstance(value, str) and not value.strip(" ")
        if value is None or blank:
            after = sa.false()
            same = nullish
        else:
            bound: sa.ColumnElement[Any] = sa.literal(value)
            if isinstance(key, _Bytewise):
                bound = _Bytewise(bound)
            bigger = key < bound if o.descending else key > bound
            after = sa.or_(bigger, nullish)
            same = key == bound
        clauses.append(sa.and_(*equal_so_far, after))
        equal_so_far.append(same)
    return sa.or_(*clauses)


def _close_when_opened(opening: asyncio.Future[Any]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close_quietly()


_NO = object()
_INT64 = 2**63  # integers beyond BIGINT are never pushed: drivers reject them


def _python_type(col_type: sa.types.TypeEngine[Any]) -> type | None:
    try:
        return col_type.python_type
    except NotImplementedError:
        return None


def _coerce(value: Any, col_type: sa.types.TypeEngine[Any]) -> Any:
    """``value`` as the column's Python type, or ``_NO`` when it cannot be compared safely."""
    # A floating-point column compares doubles, even where the driver hands out Decimals
    # (MySQL's DOUBLE).
    target = float if isinstance(col_type, sa.Float) else _python_type(col_type)
    if target is None:
        return _NO
    if isinstance(value, bool) or target is bool:
        return value if isinstance(value, bool) and target is bool else _NO
    if target is str:
        return value if isinstance(value, str) else _NO
    if target in (int, float, Decimal):
        if isinstance(value, str):  # an id from a canonical id: "10001"
            try:
                value = Decimal(value.strip())
            except ArithmeticError:
                return _NO
        if not isinstance(value, int | Decimal | float):
            return _NO
        if isinstance(value, Decimal | float) and not math.isfinite(value):
            return _NO  # NaN and infinities compare differently everywhere
        if target is int:
            # Range first: int(Decimal("1e999999999")) would build a billion-digit number.
            if not -_INT64 <= value < _INT64 or value != int(value):
                return _NO
            return int(value)
        if target is float:
            # The database compares doubles; Python compares the exact values (a float, or the
            # Decimal of its repr). Both agree only for numbers a double holds exactly as
            # written: 0.5 goes to the database, 0.1 stays in memory.
            number = float(value)
            exact = Decimal(number) == value and Decimal(repr(number)) == value
            return number if exact else _NO
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


def _close_cursor_on_disconnect(context: sa.engine.ExceptionContext) -> None:
    """On a dropped connection SQLAlchemy invalidates the connection but leaves the statement's
    cursor open; a psycopg server-side cursor (a streamed read) then warns when collected."""
    if not context.is_disconnect or context.execution_context is None:
        return
    # execution_context.cursor: ExceptionContext.cursor is declared but never set (2.1).
    cursor = getattr(context.execution_context, "cursor", None)
    if cursor is not None:
        with contextlib.suppress(Exception):  # the connection is gone: nothing left to tell
            cursor.close()


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
