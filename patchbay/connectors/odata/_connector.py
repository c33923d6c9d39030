"""The ``odata`` connector: OData v4 and v2 services through the Hub's client.

A read GETs the entity set with ``$select`` (the mapped properties), ``$filter`` (fixed
``where`` equalities and the pushed-down conditions, see ``_literals``), ``$expand`` (the
navigation property holding an entity's lines) and, in ``client`` paging, ``$top``/``$skip``.
Next links the server sends (``@odata.nextLink`` in v4, ``d.__next`` in v2) are followed
whatever the paging mode, but only on ``service_root``'s origin (credentials stay there), never
twice (a server bug that would loop forever is an error), and never past ``page_cap`` pages (an
error, not a silent stop).

A position is ``{"page": STATE, "skip": N}``: the page is re-fetched and its first N rows
skipped. STATE is ``{"skip": S, "next": URL or null, "got": G}``: the ``$skip`` window the page
belongs to, the next link it was reached by, and the rows read in that window before it.

Rows are the service's JSON objects; v2 ``/Date(…)/`` values become ISO 8601 text, expanded
lines move under ``LINES_KEY``, and a mapped property the object lacks, or lines the service
cut short, put the row in quarantine with the reason (``ROW_ERRORS_KEY``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from patchbay.connectors._http import JsonApi, PageGuard, describe_request, json_type, quarantined
from patchbay.core.connector import (
    Batch,
    Capability,
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
from patchbay.core.filters import Op
from patchbay.core.mapping import LINES_KEY, ROW_ERRORS_KEY

from ._literals import can_filter, filter_expression, key_predicate, odata_dates
from ._metadata import EntitySets, parse_metadata
from ._spec import LinesOrigin, ODataSettings, Origin

__all__ = ["ODataConnector"]

Row = dict[str, Any]
State = dict[str, Any]
# Characters left as they are in a query value or key predicate; everything else is
# percent-encoded (a space as %20, never "+", which some OData servers read literally).
_SAFE_QUERY = "'(),:/@"
_SAFE_KEY = "'(),=:@"


class ODataConnector(Connector):
    """OData v4/v2 entity sets; the client (auth, retries, rate limit, breaker) is the Hub's."""

    kind = "odata"
    Settings: ClassVar[type[BaseModel]] = ODataSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.READ, Capability.GET, Capability.INCREMENTAL, Capability.DISCOVER,
         Capability.CHECK}
    )
    pushdown: ClassVar[frozenset[Op]] = frozenset(
        {Op.EQ, Op.NE, Op.IN, Op.GT, Op.GTE, Op.LT, Op.LTE, Op.CONTAINS, Op.ISNULL}
    )  # refined per property and value by accepts()
    resources = frozenset({"http_client"})
    origin_model = Origin

    def __init__(self, settings: BaseModel, resources: Resources) -> None:
        super().__init__(settings, resources)
        assert isinstance(settings, ODataSettings)
        self.options = settings
        self.api = JsonApi(resources, settings.service_root, setting="service_root",
                           headers={"Accept": "application/json", **settings.headers},
                           explain=_explain)
        self.v2 = settings.version == "2"
        self._metadata: dict[str, EntitySets] = {}

    # --- planning ----------------------------------------------------------------------------

    def accepts(self, request: ReadRequest, condition: SourceFilter) -> bool:
        """Whatever has an OData form for this property's type (see ``_literals``)."""
        origin = self._origin(request.origin)
        return can_filter(condition, origin.types, self.options.version,
                          self.options.fold_function)

    def can_order(self, request: ReadRequest, order: SourceOrder) -> bool:
        return False  # records come in the service's order (by key, for the services we know)

    # --- reading -----------------------------------------------------------------------------

    async def read(self, request: ReadRequest) -> AsyncGenerator[Batch, None]:
        origin = self._origin(request.origin)
        if request.order:
            raise self.api.error("the odata connector cannot sort; records come in key order")
        nav = self._nav(request.lines)
        query = self._query(origin, request.paths, nav, request.filters)
        shape = _Shape(origin, _tops(request.paths), nav, request.lines)
        state, skip = self._resume(request.position)
        guard = PageGuard(self.api, cap=self.options.page_cap,
                          seen=() if state["next"] is None else (state["next"],))
        while True:
            guard.count(origin.entity_set)
            if state["next"] is None:
                page_query = dict(query)
                if self.options.paging == "client":
                    page_query["$top"] = str(self.options.page_size)
                    if state["skip"]:
                        page_query["$skip"] = str(state["skip"])
                url = _with_query(self.api.url(origin.entity_set), page_query)
            else:
                url = state["next"]
            response = await self.api.send("GET", url)
            body = self.api.parse_json(response, origin.entity_set)
            items, link = self._collection(body, origin)
            rows = [self._row(item, shape, number) for number, item in enumerate(items, 1)]
            following = self._advance(state, len(rows), link, response, origin, guard)
            if skip < len(rows):
                yield Batch(rows[skip:], _positions(state, skip))
            if following is None:
                return
            state, skip = following, 0

    def _advance(self, state: State, count: int, link: str | None, response: httpx.Response,
                 origin: Origin, guard: PageGuard) -> State | None:
        if link:
            url = self.api.same_origin(str(response.request.url.join(link)), origin.entity_set)
            guard.seen.add(str(response.request.url))  # a link back to this page loops too
            guard.fresh(url, origin.entity_set, f"next link ({describe_request('GET', url)})")
            return {"skip": state["skip"], "next": url, "got": state["got"] + count}
        window = state["got"] + count
        if self.options.paging == "client" and count and window >= self.options.page_size:
            return {"skip": state["skip"] + window, "next": None, "got": 0}
        return None

    def _query(self, origin: Origin, paths: Sequence[str], nav: str | None,
               filters: Sequence[SourceFilter]) -> dict[str, str]:
        query = dict(self.options.params)
        if origin.select:
            selected = _tops([*paths, *origin.where])  # get checks `where` on the row
            if nav is not None and self.v2:
                selected.append(nav)  # v2 drops an expanded property that $select leaves out
            if selected:
                query["$select"] = ",".join(selected)
        if nav is not None:
            query["$expand"] = nav
        try:
            expression = filter_expression(filters, origin.where, origin.types,
                                           self.options.version, self.options.fold_function)
        except ValueError as exc:  # the Hub only sends what accepts() took
            raise self.api.error(f"{origin.entity_set}: {exc}") from None
        if expression:
            query["$filter"] = expression
        if self.v2:
            query["$format"] = "json"
        return query

    def _resume(self, position: Position | None) -> tuple[State, int]:
        if position is None:
            return {"skip": 0, "next": None, "got": 0}, 0
        if isinstance(position, Mapping) and set(position) == {"page", "skip"}:
            page, skip = position["page"], position["skip"]
            if (isinstance(page, Mapping) and set(page) == {"skip", "next", "got"}
                    and _count(skip) and _count(page["skip"]) and _count(page["got"])
                    and (page["next"] is None or isinstance(page["next"], str))):
                if page["next"] is not None:
                    self.api.same_origin(page["next"])
                return dict(page), skip
        raise self.api.error(
            f"cannot resume from position {position!r}: expected "
            "{'page': {'skip': N, 'next': URL or null, 'got': N}, 'skip': N}"
        )

    async def get(self, request: GetRequest) -> Mapping[str, Any] | None:
        """By key (``/customers(…)``, ``/A_BusinessPartner('…')``); None when there is none."""
        origin = self._origin(request.origin)
        nav = self._nav(request.lines)
        wanted = tuple(v.strip() for v in request.id_values)
        predicate = key_predicate(request.id_paths, wanted, origin.types, self.options.version)
        if predicate is None:
            return None  # not a value the key can hold (a guid key and a non-guid id)
        query = self._query(origin, request.paths, nav, ())
        query.pop("$filter", None)  # fixed `where` conditions are checked on the row below
        url = self.api.url(origin.entity_set) + quote(predicate, safe=_SAFE_KEY)
        body = await self.api.get_json(_with_query(url, query), where=origin.entity_set,
                                       missing_ok=True)
        if body is None:
            return None
        self._raise_for_error_body(body, origin)
        entity = body.get("d") if self.v2 and isinstance(body, dict) else body
        if not isinstance(entity, dict):
            expected = "an object under 'd'" if self.v2 else "a JSON object"
            raise self.api.error(f"{origin.entity_set}{predicate}: expected {expected}")
        row = self._row(entity, _Shape(origin, _tops(request.paths), nav, request.lines), 1)
        if any(str(row.get(name)) != str(value) for name, value in origin.where.items()):
            return None  # the entity exists but this binding's `where` excludes it
        return row

    # --- rows --------------------------------------------------------------------------------

    def _collection(self, body: Any, origin: Origin) -> tuple[list[Any], str | None]:
        self._raise_for_error_body(body, origin)
        where = origin.entity_set
        if not isinstance(body, dict):
            raise self.api.error(f"{where}: expected a JSON object, got a JSON {json_type(body)}")
        if self.v2:
            if "d" not in body:
                hint = " (an OData v4 body: set version: '4')" if "value" in body else ""
                raise self.api.error(f"{where}: an OData v2 body without 'd'{hint}")
            envelope = body["d"]
            if isinstance(envelope, list):  # the older v1 envelope: {"d": [...]}
                return envelope, None
            results = envelope.get("results") if isinstance(envelope, dict) else None
            if not isinstance(results, list):
                raise self.api.error(f"{where}: an OData v2 body without a 'd.results' list")
            link = envelope.get("__next")
        else:
            results = body.get("value")
            if not isinstance(results, list):
                hint = " (an OData v2 body: set version: '2')" if "d" in body else ""
                raise self.api.error(f"{where}: an OData v4 body without a 'value' list{hint}")
            link = body.get("@odata.nextLink", body.get("odata.nextLink"))
        if link is not None and not isinstance(link, str):
            raise self.api.error(f"{where}: the next link is a JSON {json_type(link)}, not a URL")
        return results, link

    def _row(self, item: Any, shape: _Shape, number: int) -> Row:
        where = shape.origin.entity_set
        if not isinstance(item, dict):  # kept, so it is quarantined with its reason
            return quarantined(item, f"{where} record {number}")
        row: Row = dict(item)
        if self.v2:
            odata_dates(row)
        errors = [_missing(name, where) for name in shape.tops if name not in row]
        if shape.nav is not None:
            lines, problem = self._lines(row, shape)
            row[LINES_KEY] = lines
            if problem:
                errors.append(problem)
        if errors:
            row[ROW_ERRORS_KEY] = errors
        return row

    def _lines(self, row: Row, shape: _Shape) -> tuple[list[Row], str | None]:
        nav = shape.nav
        assert nav is not None
        assert shape.lines is not None
        found = row.pop(nav, None)
        if f"{nav}@odata.nextLink" in row:
            return [], (f"{nav}: the service paged the expanded lines ({nav}@odata.nextLink); "
                        "patchbay does not follow nested next links, so the lines are "
                        "incomplete")
        if isinstance(found, dict) and "results" in found:  # v2: {"results": [...]}
            found = found["results"]
        if not isinstance(found, list):
            what = "missing" if found is None else (
                "not expanded (deferred)" if isinstance(found, dict) else
                f"a JSON {json_type(found)}")
            return [], f"{nav}: the expanded lines are {what}"
        tops = _tops(shape.lines.paths)
        lines: list[Row] = []
        for item in found:
            if not isinstance(item, dict):
                lines.append({ROW_ERRORS_KEY: [f"a JSON {json_type(item)}, not an object"]})
                continue
            line = dict(item)
            missing = [_missing(name, nav) for name in tops if name not in line]
            if missing:
                line[ROW_ERRORS_KEY] = missing
            lines.append(line)
        if shape.lines.order_by:
            lines.sort(key=_sort_key(shape.lines.order_by))
        return lines, None

    def _raise_for_error_body(self, body: Any, origin: Origin) -> None:
        """A 200 whose body is an OData error (some gateways do that) is an error."""
        if isinstance(body, dict) and isinstance(body.get("error"), dict) and not (
            "value" in body or "d" in body
        ):
            raise self.api.error(f"{origin.entity_set}: the service answered 200 with an error: "
                                 f"{_error_text(body)}")

    # --- health and schema ------------------------------------------------------------------

    async def check(self) -> None:
        path, query = self._health()
        await self.api.send("GET", _with_query(self.api.url(path), self._format(query)))

    def _health(self) -> tuple[str, dict[str, str]]:
        """What ``check`` GETs: the (first) service document, small and behind the same auth."""
        service = self.options.services[0] if self.options.services else ""
        return (f"{service}/" if service else ""), {}

    async def discover(self) -> SourceSchema:
        """Every entity set of each service in ``settings.services``, from ``$metadata``."""
        tables: list[TableInfo] = []
        for service in self.options.services:
            sets = await self._entity_sets(service)
            for name, table in sets.tables.items():
                full = f"{service}/{name}" if service else name
                tables.append(TableInfo(full, table.columns, table.primary_key))
        return SourceSchema(tuple(tables))

    async def describe(self, origin: Mapping[str, Any]) -> TableInfo | None:
        """An entity set's properties, or the lines a navigation property leads to."""
        if set(origin) == {"expand"}:
            nav = LinesOrigin.model_validate(dict(origin)).expand
            for service in self.options.services:
                target = (await self._entity_sets(service)).navigations.get(nav)
                if target is not None:
                    return TableInfo(nav, target.columns, target.primary_key)
            return None
        parsed = self._origin(origin)
        service, name = _service_of(parsed.entity_set)
        table = (await self._entity_sets(service)).tables.get(name)
        if table is None:
            return None
        return TableInfo(parsed.entity_set, table.columns, table.primary_key)

    async def _entity_sets(self, service: str) -> EntitySets:
        if service not in self._metadata:
            url = self.api.url(f"{service}/$metadata" if service else "$metadata")
            response = await self.api.send(
                "GET", _with_query(url, self.options.params),
                headers={"Accept": "application/xml", **self.options.headers})
            try:
                self._metadata[service] = parse_metadata(response.content)
            except ValueError as exc:
                where = describe_request("GET", response.request.url)
                raise self.api.error(f"{where}: {exc}") from None
        return self._metadata[service]

    # --- HTTP --------------------------------------------------------------------------------

    def _format(self, query: dict[str, str]) -> dict[str, str]:
        return {**self.options.params, **query, **({"$format": "json"} if self.v2 else {})}

    # --- plumbing ----------------------------------------------------------------------------

    def _origin(self, origin: Mapping[str, Any]) -> Origin:
        try:
            return Origin.model_validate(dict(origin))
        except ValidationError as exc:
            raise self.api.error(f"invalid from: block: {invalid_block(exc)}") from None

    def _nav(self, lines: LinesRequest | None) -> str | None:
        if lines is None:
            return None
        try:
            return LinesOrigin.model_validate(dict(lines.origin)).expand
        except ValidationError as exc:
            raise self.api.error(
                f"invalid lines.from: block (the odata connector reads lines by $expand, "
                f"e.g. {{expand: salesOrderLines}}): {invalid_block(exc)}"
            ) from None


# --- helpers ---------------------------------------------------------------------------------


class _Shape:
    """What a row must hold: the mapped top-level properties, and its lines' if expanded."""

    __slots__ = ("lines", "nav", "origin", "tops")

    def __init__(self, origin: Origin, tops: list[str], nav: str | None,
                 lines: LinesRequest | None) -> None:
        self.origin, self.tops, self.nav, self.lines = origin, tops, nav, lines


def _tops(paths: Iterable[str]) -> list[str]:
    """The top-level properties of mapping paths (``address.city`` -> ``address``), in order."""
    out: list[str] = []
    for path in paths:
        top = path.split(".", 1)[0]
        if top and top not in out:
            out.append(top)
    return out


def _missing(name: str, where: str) -> str:
    return (f"property {name!r} is missing from the remote object ({where}): check the "
            "mapping's path against the service's $metadata")


def _sort_key(paths: Sequence[str]) -> Callable[[Row], tuple[Any, ...]]:
    """Lines in ``order_by`` order: numbers (and digit strings such as SAP's item numbers
    "10", "20", "100") numerically, other text as text, nulls last; never a TypeError."""

    def part(value: Any) -> tuple[int, int, Any]:
        if value is None:
            return (1, 0, 0)
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return (0, 0, Decimal(str(value)))
        if isinstance(value, str) and value.strip().isdigit():
            return (0, 0, Decimal(value.strip()))
        return (0, 1, str(value))

    def key(line: Row) -> tuple[Any, ...]:
        return tuple(part(line.get(path)) for path in paths)

    return key


def _positions(state: State, skip: int) -> Callable[[int], Position]:
    def position_after(index: int) -> dict[str, Any]:
        return {"page": state, "skip": skip + index + 1}

    return position_after


def _count(value: object) -> bool:
    return type(value) is int and value >= 0


def _with_query(url: str, query: Mapping[str, str]) -> str:
    """The URL with the query encoded here, not by httpx: OData servers want %20, not +."""
    if not query:
        return url
    return url + "?" + "&".join(f"{quote(k, safe='$')}={quote(v, safe=_SAFE_QUERY)}"
                                for k, v in query.items())


def _service_of(entity_set: str) -> tuple[str, str]:
    """(the service path whose $metadata describes it, the entity set's name)."""
    segments = entity_set.split("/")
    service: list[str] = []
    for segment in segments[:-1]:
        if "(" in segment:
            break
        service.append(segment)
    return "/".join(service), segments[-1].split("(", 1)[0]


def _explain(status: int, body: Any) -> str:
    return "" if body is None else f": {_error_text(body)}"


def _error_text(body: Any) -> str:
    """``code: message`` of an OData error body (v4 ``error.message``, v2 ``message.value``)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "(no OData error in the body)"
    message = error.get("message")
    if isinstance(message, dict):
        message = message.get("value")
    text = f"{error.get('code') or 'error'}: {message or '(no message)'}"
    return text if len(text) <= 300 else text[:297] + "..."
