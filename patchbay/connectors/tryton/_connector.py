"""The ``tryton`` connector: a Tryton ERP database over JSON-RPC, through the Hub's client.

The client carries the source's auth (``auth: {scheme: tryton_session, …}``: the login, the
session header, one new login on a 401): the connector holds no credentials.

* an entity comes from ``from: {model: party.party, domain: […], active_test: false}``; its
  rows are ``model.<name>.search_read`` results, with Tryton's tagged values decoded (dates,
  datetimes, decimals) and booleans as booleans (SQLite gives 1/0);
* a dotted path (``party.name``, ``addresses.country.code``) reads through relations: Tryton
  nests the related records, and the row holds the value under the dotted path. Through a
  One2Many / Many2Many it is the first related record's (in the relation's own order);
* reads are keyset-paged on ``(last_modified_at, id)`` (Tryton's write date, or create date for
  a record never written; computed here on servers without that field, then by id), or on
  ``(field, id)`` for an ``order_by`` on a number, date or datetime field. A position is that
  pair (Tryton's tagged JSON), so a resume neither repeats nor skips, and a page of records that
  does not move past it is an error, never a loop;
* filters become domain clauses only where Tryton answers as Python would (see ``_domain``);
  the Hub re-checks every record anyway;
* lines come with ONE ``search_read`` per batch of headers (``[key, "in", ids]``);
* every path the mapping reads is checked against ``fields_get`` before the first page: a field
  the model does not have is an error naming the model and the field, never a column of nulls.

The user's preferences (company, language) are the context of every call, so company-dependent
fields (prices) have values.
"""

from __future__ import annotations

import asyncio
import difflib
import json
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from patchbay.core.connector import (
    Batch,
    Capability,
    ColumnInfo,
    Connector,
    GetRequest,
    LinesRequest,
    Position,
    ReadRequest,
    Resources,
    SourceFilter,
    SourceOrder,
    SourceSchema,
    TableInfo,
    invalid_block,
)
from patchbay.core.errors import SourceError
from patchbay.core.filters import Op
from patchbay.core.mapping import LINES_KEY

from ._domain import EMULATED, MODIFIED, PUSHED_OPS, SORTABLE, after, clause, comes_after
from ._preset import preset_entities
from ._rpc import Rpc, decode, encode
from ._spec import Origin, TrytonSettings

__all__ = ["TrytonConnector"]

Row = dict[str, Any]
FieldInfo = Mapping[str, Any]
_PREFERENCES = ("company", "language")  # what the user's preferences add to the context


@dataclass(frozen=True)
class _Plan:
    """What one read of a ``from:`` block asks Tryton for: the paths the mapping reads with
    their fields_get entries, the fields to request, and the context."""

    origin: Origin
    paths: tuple[str, ...]
    infos: Mapping[str, FieldInfo]
    fields: list[str]
    context: Mapping[str, Any]


class TrytonConnector(Connector):
    """Tryton over JSON-RPC; the client (retries, rate limit, breaker) comes from the Hub."""

    kind = "tryton"
    Settings = TrytonSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.READ, Capability.GET, Capability.INCREMENTAL, Capability.ORDER,
         Capability.DISCOVER, Capability.CHECK}
    )
    pushdown = PUSHED_OPS
    resources = frozenset({"http_client"})
    origin_model = Origin

    def __init__(self, settings: TrytonSettings, resources: Resources) -> None:
        super().__init__(settings, resources)
        self.options = settings
        self.rpc = Rpc(resources.http_client, settings.rpc_url, source=resources.source,
                       owner=resources.owner)
        # fields_get entries by model: those asked for so far (all, for models in _complete),
        # and the names asked for that a model does not have.
        self._known: dict[str, dict[str, FieldInfo]] = {}
        self._complete: set[str] = set()
        self._absent: dict[str, set[str]] = {}
        self._preferences: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    # --- config --------------------------------------------------------------------------------

    @classmethod
    def preset_entities(cls, settings: BaseModel) -> Mapping[str, Mapping[str, Any]]:
        assert isinstance(settings, TrytonSettings)
        return preset_entities(settings)

    # --- planning ------------------------------------------------------------------------------

    def accepts(self, request: ReadRequest, condition: SourceFilter) -> bool:
        """By operator and value here; a clause whose field turns out (at read time) to have
        another type or no search method stays in memory only."""
        if condition.op not in PUSHED_OPS:
            return False
        if condition.op is Op.CONTAINS or condition.fold:
            return isinstance(condition.value, str) and condition.value.isascii()
        return True

    def can_order(self, request: ReadRequest, order: SourceOrder) -> bool:
        """Not text (``blank_is_null`` marks it): a database collation is not code point
        order. Whether the field is a number or date is checked when the read starts."""
        return "." not in order.path and not order.blank_is_null

    # --- reading -------------------------------------------------------------------------------

    async def read(self, request: ReadRequest) -> AsyncGenerator[Batch, None]:
        plan = await self._plan(request.origin, (*request.id_paths, *request.paths),
                                f"entities.{request.entity}")
        model = plan.origin.model
        sort = await self._sort(model, request.order)
        wanted = list(dict.fromkeys([*plan.fields, "id", *([sort.key] if sort.key else [])]))
        domain = [plan.origin.domain, *await self._clauses(model, request.filters)]
        lines = await self._lines_plan(request) if request.lines is not None else None
        position = self._resume(request.position, sort)
        while True:
            page = domain + ([sort.after(position)] if position is not None else [])
            raw = await self._search_read(model, page, request.batch_size, sort.order, wanted,
                                          plan.context)
            if not raw:
                return
            keys = [sort.key_of(row) for row in raw]
            if position is not None and not sort.comes_after(keys[0], position):
                raise self._error(
                    f"model {model}: Tryton answered records that do not come after the last "
                    f"position {position!r}: stopped rather than read them again"
                )
            rows = [_shape(row, plan) for row in raw]
            if lines is not None:
                assert request.lines is not None
                await self._attach_lines(lines, request.lines, request.id_paths, rows)
            yield Batch(rows, _positions(keys))
            if len(raw) < request.batch_size:
                return
            position = keys[-1]

    async def _sort(self, model: str, order: Sequence[SourceOrder]) -> _Sort:
        """The requested order (a number, date or datetime field of the model), or else
        ``last_modified_at``; the id breaks ties either way."""
        if not order:
            fields = await self._fields(model, [MODIFIED])
            # Without last_modified_at (its stand-in is computed here) records come by id.
            native = MODIFIED in fields and not fields[MODIFIED].get(EMULATED)
            return _Sort(MODIFIED if native else None)
        if len(order) > 1:
            raise self._error("the tryton connector sorts on one field at a time")
        [wanted] = order
        [info] = (await self._resolve(model, [wanted.path])).values()
        if "." in wanted.path or info.get("type") not in SORTABLE or info.get(EMULATED) or (
                info.get("sortable") is False):
            raise self._error(
                f"model {model}: cannot sort on {wanted.path!r} ({info.get('type')}): only on "
                "the model's own number, date, datetime and boolean fields Tryton can sort by "
                "(text sorts by the database's collation, not as patchbay merges)"
            )
        return _Sort(wanted.path, descending=wanted.descending, nulls_last=True)

    async def get(self, request: GetRequest) -> Mapping[str, Any] | None:
        plan = await self._plan(request.origin, (*request.id_paths, *request.paths),
                                f"entities.{request.entity}")
        clauses = []
        for path, text in zip(request.id_paths, request.id_values, strict=True):
            found = clause(SourceFilter(path, Op.EQ, text.strip()), plan.infos[path])
            if found is None:
                return None  # "abc" is never the id of a record
            clauses.append(found)
        wanted = list(dict.fromkeys([*plan.fields, "id"]))
        raw = await self._search_read(plan.origin.model, [plan.origin.domain, *clauses], 2,
                                      [["id", "ASC"]], wanted, plan.context)
        if not raw:
            return None
        row = _shape(raw[0], plan)
        if request.lines is not None:
            lines = await self._lines_plan(request)
            await self._attach_lines(lines, request.lines, request.id_paths, [row])
        return row

    async def _search_read(self, model: str, domain: list[Any], limit: int | None,
                           order: list[list[str]], fields: list[str],
                           context: Mapping[str, Any]) -> list[Row]:
        method = f"model.{model}.search_read"
        found = await self.rpc.call(method, [domain, 0, limit, order, fields, dict(context)])
        if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
            raise self._error(f"{method}: expected a list of records, got a JSON "
                              f"{type(found).__name__}")
        return found

    def _resume(self, position: Position | None, sort: _Sort) -> list[Any] | None:
        if position is None:
            return None
        # Positions hold Tryton's tagged values ({"__class__": "date", ...}): decode them.
        decoded = json.loads(json.dumps(position), object_hook=decode)
        if (isinstance(decoded, list) and len(decoded) == (2 if sort.key else 1)
                and type(decoded[-1]) is int
                and (len(decoded) == 1 or decoded[0] is None
                     or isinstance(decoded[0], (*_TAGGED, int, float)))):
            return decoded
        expected = "[VALUE, ID]" if sort.key else "[ID]"
        raise self._error(f"cannot resume from position {position!r}: expected {expected}")

    # --- lines ---------------------------------------------------------------------------------

    async def _lines_plan(self, request: ReadRequest | GetRequest) -> _Plan:
        lines = request.lines
        assert lines is not None
        if len(lines.key) != 1 or len(request.id_paths) != 1:
            raise self._error(
                "lines need one key path (the line's Many2One to its header, e.g. sale) and a "
                "header id of one path"
            )
        return await self._plan(lines.origin, (*lines.key, *lines.paths, *lines.order_by),
                                f"entities.{request.entity}.lines")

    async def _attach_lines(self, plan: _Plan, lines: LinesRequest, id_paths: Sequence[str],
                            headers: list[Row]) -> None:
        """ONE search_read for the lines of every header of the batch."""
        [key], [id_path] = lines.key, id_paths
        ids = list(dict.fromkeys(h[id_path] for h in headers if h.get(id_path) is not None))
        by_header: dict[Any, list[Row]] = {}
        if ids:
            order = [[p, "ASC"] for p in lines.order_by] + [["id", "ASC"]]
            wanted = list(dict.fromkeys([*plan.fields, "id"]))
            found = await self._search_read(plan.origin.model,
                                            [plan.origin.domain, [key, "in", ids]], None, order,
                                            wanted, plan.context)
            for raw in found:
                line = _shape(raw, plan)
                by_header.setdefault(line.get(key), []).append(line)
        for header in headers:
            header[LINES_KEY] = by_header.get(header.get(id_path), [])

    # --- schema --------------------------------------------------------------------------------

    async def _plan(self, origin: Mapping[str, Any], paths: Sequence[str], where: str) -> _Plan:
        parsed = self._origin(origin, where)
        unique = tuple(dict.fromkeys(paths))
        infos = await self._resolve(parsed.model, unique)
        fields: list[str] = []
        for path in unique:
            if infos[path].get(EMULATED):
                prefix = path.removesuffix(MODIFIED)
                fields += [f"{prefix}write_date", f"{prefix}create_date"]
            else:
                fields.append(path)
        return _Plan(parsed, unique, infos, list(dict.fromkeys(fields)),
                     await self._context(parsed))

    async def _resolve(self, model: str, paths: Sequence[str]) -> dict[str, FieldInfo]:
        """The field each dotted path ends on (one fields_get per model on the way); an error
        naming model and field for a path that does not exist."""
        fields = await self._fields(model, {p.partition(".")[0] for p in paths})
        found: dict[str, FieldInfo] = {}
        nested: dict[str, list[str]] = {}
        for path in paths:
            head, _, rest = path.partition(".")
            info = fields.get(head)
            if info is None:
                close = difflib.get_close_matches(head, list(self._known[model]), n=3)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                raise self._error(
                    f"model {model} has no field {head!r} (the mapping reads {path!r}).{hint} "
                    f"`patchbay discover {self.res.source}` lists every model's fields"
                )
            if not rest:
                found[path] = info
            elif not isinstance(info.get("relation"), str):
                raise self._error(
                    f"model {model}: field {head!r} is a {info.get('type')} field, not a "
                    f"relation: the path {path!r} cannot go through it"
                )
            else:
                nested.setdefault(head, []).append(rest)
        for head, rests in nested.items():
            inner = await self._resolve(str(fields[head]["relation"]), rests)
            found.update({f"{head}.{rest}": inner[rest] for rest in rests})
        return found

    async def _fields(self, model: str, names: Iterable[str] | None = None
                      ) -> dict[str, FieldInfo]:
        """``fields_get`` entries of ``model``: of ``names`` (those it has), or of every field.
        Each name is asked for once per connector; a name the model lacks fetches the whole
        list once (for the error's hints)."""
        known = self._known.setdefault(model, {})
        wanted = None if names is None else set(names)
        if wanted is not None and MODIFIED in wanted:
            wanted |= {"write_date", "create_date"}  # to stand in for it on older servers
        if model not in self._complete:
            if wanted is None:
                await self._fetch_fields(model, None)
            else:
                missing = sorted(wanted - known.keys() - self._absent.get(model, set()))
                if missing:
                    await self._fetch_fields(model, missing)
                if wanted - known.keys():
                    await self._fetch_fields(model, None)
        if wanted is None:
            return dict(known)
        return {name: known[name] for name in wanted if name in known}

    async def _fetch_fields(self, model: str, names: list[str] | None) -> None:
        found = await self.rpc.call(f"model.{model}.fields_get",
                                    [names, await self._context(None)])
        if not isinstance(found, dict):
            raise self._error(f"model.{model}.fields_get: not a mapping of fields")
        known = self._known.setdefault(model, {})
        known.update({str(k): v for k, v in found.items() if isinstance(v, dict)})
        known.setdefault("id", {"type": "integer", "searchable": True, "required": True})
        if names is None:
            self._complete.add(model)
        else:
            self._absent.setdefault(model, set()).update(set(names) - known.keys())
        if MODIFIED not in known and {"write_date", "create_date"} <= known.keys():
            # Tryton before last_modified_at: the connector computes it (see _shape).
            known[MODIFIED] = {"type": "timestamp", "searchable": True, EMULATED: True}

    async def _clauses(self, model: str, filters: Sequence[SourceFilter]) -> list[list[Any]]:
        out = []
        for condition in filters:
            [info] = (await self._resolve(model, [condition.path])).values()
            found = clause(condition, info)
            if found is None:
                self.res.logger.debug("source %s: %s %s on %s stays in memory", self.res.source,
                                      condition.path, condition.op, model)
            else:
                out.append(found)
        return out

    async def discover(self) -> SourceSchema:
        """Every model of the database with its fields: two calls (ir.model, ir.model.field)."""
        context = await self._context(None)
        # ir.model.name is the model's name (party.party), ir.model.field.model the same name
        models = await self._search_read("ir.model", [], None, [["name", "ASC"]], ["name"],
                                         context)
        fields = await self._search_read(
            "ir.model.field", [], None, [["model", "ASC"], ["name", "ASC"]],
            ["model", "name", "ttype", "relation"], context,
        )
        columns: dict[str, list[ColumnInfo]] = {str(m["name"]): [] for m in models}
        for field in fields:
            name, kind = str(field.get("name")), str(field.get("ttype"))
            if field.get("relation"):
                kind = f"{kind}({field['relation']})"
            columns.setdefault(str(field.get("model")), []).append(ColumnInfo(name, kind))
        tables = []
        for model, cols in sorted(columns.items()):
            if not any(c.name == "id" for c in cols):
                cols.insert(0, ColumnInfo("id", "integer", False))
            tables.append(TableInfo(model, tuple(cols), ("id",)))
        return SourceSchema(tuple(tables))

    async def describe(self, origin: Mapping[str, Any]) -> TableInfo | None:
        parsed = self._origin(origin, "describe")
        fields = await self._fields(parsed.model)
        columns = []
        for name, info in sorted(fields.items()):
            kind = str(info.get("type"))
            if isinstance(info.get("relation"), str):
                kind = f"{kind}({info['relation']})"
            columns.append(ColumnInfo(name, kind, not info.get("required", False)))
        return TableInfo(parsed.model, tuple(columns), ("id",))

    # --- check and context ---------------------------------------------------------------------

    async def check(self) -> None:
        """Read the user's preferences (the client logs in first): reachable, database,
        credentials."""
        await self.rpc.call("model.res.user.get_preferences", [True, {}])

    async def _context(self, origin: Origin | None) -> dict[str, Any]:
        async with self._lock:
            if self._preferences is None:
                found = await self.rpc.call("model.res.user.get_preferences", [True, {}])
                found = found if isinstance(found, dict) else {}
                self._preferences = {k: found[k] for k in _PREFERENCES if k in found}
        context = {**self._preferences, **self.options.context}
        if origin is not None:
            context.update(origin.context)
            if not origin.active_test:
                context["active_test"] = False
        return context

    # --- plumbing ------------------------------------------------------------------------------

    def _origin(self, origin: Mapping[str, Any], where: str) -> Origin:
        try:
            return Origin.model_validate(dict(origin))
        except ValidationError as exc:
            raise self._error(f"invalid {where}.from: {invalid_block(exc)}") from None

    def _error(self, message: str) -> SourceError:
        return SourceError(self.res.source, message, owner=self.res.owner)


# --- rows ----------------------------------------------------------------------------------------


def _shape(raw: Mapping[str, Any], plan: _Plan) -> Row:
    """A search_read record as a row: plain fields as they are, each dotted path's value under
    that path (Tryton nests related records under ``"relation."``), booleans as booleans."""
    row: Row = {name: value for name, value in raw.items() if not name.endswith(".")}
    for path in plan.paths:
        if plan.infos[path].get(EMULATED):
            prefix = path.removesuffix(MODIFIED)
            row[path] = _value(raw, f"{prefix}write_date") or _value(raw, f"{prefix}create_date")
            continue
        value = _value(raw, path)
        if plan.infos[path].get("type") == "boolean" and value is not None:
            value = bool(value)
        row[path] = value
    return row


def _value(raw: Mapping[str, Any], path: str) -> Any:
    return _walk(raw, path) if "." in path else raw.get(path)


def _walk(raw: Mapping[str, Any], path: str) -> Any:
    *relations, last = path.split(".")
    current: Any = raw
    for name in relations:
        current = current.get(name + ".") if isinstance(current, Mapping) else None
        if isinstance(current, list):  # x2many: the first related record
            current = current[0] if current else None
        if current is None:
            return None
    return current.get(last) if isinstance(current, Mapping) else None


@dataclass(frozen=True)
class _Sort:
    """A read's order: ``key`` (none: by id), then the id; and how positions compare in it."""

    key: str | None
    descending: bool = False
    nulls_last: bool = False  # last_modified_at: nulls first (there are none on 8.0)

    @property
    def order(self) -> list[list[str]]:
        if self.key is None:
            return [["id", "ASC"]]
        direction = "DESC" if self.descending else "ASC"
        nulls = "NULLS LAST" if self.nulls_last else "NULLS FIRST"
        return [[self.key, f"{direction} {nulls}"], ["id", "ASC"]]

    def key_of(self, row: Mapping[str, Any]) -> list[Any]:
        return [row.get("id")] if self.key is None else [row.get(self.key), row.get("id")]

    def after(self, position: list[Any]) -> list[Any]:
        return after(self.key, position, descending=self.descending, nulls_last=self.nulls_last)

    def comes_after(self, key: list[Any], position: list[Any]) -> bool:
        return comes_after(key, position, descending=self.descending,
                           nulls_last=self.nulls_last)


_TAGGED = (datetime, date, time, timedelta, Decimal)


def _positions(keys: list[list[Any]]) -> Callable[[int], Position]:
    def position_after(index: int) -> list[Any]:
        return [encode(k) if isinstance(k, _TAGGED) else k for k in keys[index]]

    return position_after
