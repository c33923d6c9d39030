"""The ``hubspot`` connector: CRM v3 objects through the Hub's client (token or OAuth2).

A read without pushed filters lists ``GET /crm/v3/objects/{object}`` in id order, ``limit``
records a page, following ``paging.next.after`` (never ``paging.next.link``: only
``base_url``'s origin is ever called). A read with filters or ``since`` goes through
``POST /crm/v3/objects/{object}/search``, sorted ascending by the last-modified property. One
search pages through at most ``search_window`` results (HubSpot refuses past 10,000), so a read
that needs more starts a new search from the last modification time it delivered, skipping the
records at exactly that time it already has: no gaps, no duplicates, no silent stop. More
records of one modification time than a window holds are paged through by id.

Only the properties the mapping reads (``properties.<name>``) are requested. Association ids
(``from.associations``) come from one v4 batch read per page and type, into
``associated.<type>``.

Positions: a list read resumes at ``{"after": token, "skip": n}``; a search read at the keyset
``{"t": epoch ms, "ids": [...]}`` (plus ``"tie": id`` inside a long tie), so a resume never
leans on an offset that shifted. The
connector never retries: 429s with ``Retry-After`` reach the resilience transport untouched;
searches and batch reads are POSTs that only read, so they are marked ``READ_ONLY``, which
lets the transport replay them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any, ClassVar, cast
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from patchbay.connectors._http import JsonApi, PageGuard, describe_request, quarantined
from patchbay.core.connector import (
    READ_ONLY,
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
from patchbay.core.filters import Op
from patchbay.core.mapping import LINES_KEY, ROW_ERRORS_KEY

from ._presets import PRESETS
from ._search import TOP_LEVEL, Keyset, parse_ms, property_of, search_body, search_filter
from ._spec import HubSpotSettings, Origin

__all__ = ["HubSpotConnector"]

Row = dict[str, Any]
_TOP_COLUMNS = (("id", "string"), ("createdAt", "datetime"), ("updatedAt", "datetime"),
                ("archived", "bool"), ("properties", "object"),
                ("associated", "object"))  # filled by the connector: associations, line keys


class HubSpotConnector(Connector):
    """HubSpot CRM objects: contacts, companies, deals, tickets, products, line items."""

    kind = "hubspot"
    Settings = HubSpotSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.READ, Capability.GET, Capability.INCREMENTAL, Capability.DISCOVER,
         Capability.CHECK}
    )
    pushdown: ClassVar[frozenset[Op]] = frozenset(
        {Op.EQ, Op.IN, Op.GT, Op.GTE, Op.LT, Op.LTE, Op.ISNULL}
    )  # refined per condition by accepts()
    resources = frozenset({"http_client"})
    origin_model = Origin

    def __init__(self, settings: HubSpotSettings, resources: Resources) -> None:
        super().__init__(settings, resources)
        self.options = settings
        self.api = JsonApi(resources, settings.base_url, explain=_explain,
                           observe=self._log_limits)
        self._seen: dict[str, Origin] = {}  # origins read so far, by object (for discover)

    # --- presets and config ----------------------------------------------------------------

    @classmethod
    def preset_entities(cls, settings: BaseModel) -> Mapping[str, Mapping[str, Any]]:
        return PRESETS

    # --- planning ----------------------------------------------------------------------------

    def accepts(self, request: ReadRequest, condition: SourceFilter) -> bool:
        origin = self._origin(request.origin, request.entity)
        return search_filter(origin, condition) is not None

    def can_order(self, request: ReadRequest, order: SourceOrder) -> bool:
        return False  # id order for lists, modification order for searches

    # --- reading -----------------------------------------------------------------------------

    async def read(self, request: ReadRequest) -> AsyncGenerator[Batch, None]:
        origin = self._origin(request.origin, request.entity)
        if request.order:
            raise self.api.error("the hubspot connector cannot sort on a mapped field")
        lines = self._lines(origin, request.lines, request.entity)
        properties = self._properties(origin, request.paths)
        if request.filters:
            filters = []
            for condition in request.filters:
                translated = search_filter(origin, condition)
                if translated is None:  # the Hub only sends what accepts() took
                    raise self.api.error(f"cannot push {condition.path} {condition.op} to HubSpot")
                filters.append(translated)
            pages = self._search(origin, filters, properties, request.position)
        else:
            pages = self._list(origin, properties, request.position)
        async with contextlib.aclosing(pages) as batches:
            async for batch in batches:
                if lines is not None:
                    await self._attach_lines(origin, lines, batch.rows)
                yield batch

    async def _list(self, origin: Origin, properties: Sequence[str], position: Position | None
                    ) -> AsyncGenerator[Batch, None]:
        after, skip = _list_position(position)
        if skip is None:
            raise self.api.error(f"cannot resume from position {position!r}: expected "
                                 "{'after': TOKEN, 'skip': N}")
        path = f"/crm/v3/objects/{origin.object}"
        guard = PageGuard(self.api)
        while True:
            params = {"limit": str(self.options.page_size), "archived": "false",
                      "properties": ",".join(properties)}
            if after is not None:
                params["after"] = after
            body = await self._call("GET", path, params=params)
            rows = self._results(body, path)
            following = self._next(body, path, guard)
            if not rows and following is not None:
                raise self.api.error(f"GET {path}: an empty page that says there are more "
                                     f"(paging.next.after {following!r})")
            await self._associate(origin, rows)
            if skip < len(rows):
                yield Batch(rows[skip:], _list_positions(after, skip))
            if following is None:
                return
            after, skip = following, 0

    async def _search(self, origin: Origin, filters: Sequence[dict[str, Any]],
                      properties: Sequence[str], position: Position | None
                      ) -> AsyncGenerator[Batch, None]:
        keyset = Keyset() if position is None else Keyset.load(position)
        if keyset is None:
            raise self.api.error(f"cannot resume from position {position!r}: expected "
                                 "{'t': EPOCH_MS, 'ids': [...]}")
        path = f"/crm/v3/objects/{origin.object}/search"
        window, size = self.options.search_window, self.options.page_size
        while True:  # one search per window
            start, fetched, after = keyset, 0, None
            guard = PageGuard(self.api)
            while True:  # the pages of one search
                limit = min(size, window - fetched)
                body = await self._call("POST", path, json=search_body(
                    origin, filters, start, properties, limit, after))
                rows = self._results(body, path)
                fetched += max(limit, len(rows))  # HubSpot's next offset is this one + limit
                following = self._next(body, path, guard)
                if not rows and following is not None:
                    raise self.api.error(f"POST {path}: an empty page that says there are more "
                                         f"(paging.next.after {following!r})")
                fresh, positions, keyset = self._advance(origin, rows, keyset)
                await self._associate(origin, fresh)
                if fresh:
                    yield Batch(fresh, positions.__getitem__)
                if following is None:
                    if keyset.tie is None:
                        return
                    assert keyset.t is not None
                    keyset = Keyset(keyset.t + 1)  # the tie is done: on after its time
                    break
                if fetched >= window:
                    break
                after = following
            if keyset == start:
                # A whole window of one modification time, all delivered before: more records
                # share it than one search can page through. Page through that time by id.
                if start.t is None or start.tie is not None:
                    raise self.api.error(f"POST {path}: a search window brought nothing new")
                keyset = Keyset(start.t, start.ids, "0")

    def _advance(self, origin: Origin, rows: list[Row], keyset: Keyset
                 ) -> tuple[list[Row], list[Position], Keyset]:
        """The rows not delivered yet, the position after each, and the keyset after all."""
        fresh: list[Row] = []
        positions: list[Position] = []
        for row in rows:
            ident = row.get("id")
            props = row.get("properties")
            t = parse_ms(props.get(origin.modified)) if isinstance(props, dict) else None
            if not isinstance(ident, str) or not ident.isdigit() or t is None:
                row.setdefault(ROW_ERRORS_KEY, []).append(
                    f"{origin.object}: search result without an id or a readable "
                    f"{origin.modified}"
                )
            elif keyset.tie is not None:  # paging one modification time by id
                if t != keyset.t or int(ident) <= int(keyset.tie):
                    raise self.api.error(
                        f"{origin.object}: search results for {origin.modified} = {keyset.t} "
                        "are not that time in ascending id order; cannot split the read safely"
                    )
                seen = ident in keyset.ids
                keyset = Keyset(keyset.t, keyset.ids, ident)
                if seen:
                    continue  # delivered before the tie was paged by id
            elif keyset.seen(t, ident):
                continue  # delivered by the previous window
            elif keyset.t is not None and t < keyset.t:
                raise self.api.error(
                    f"{origin.object}: search results are not in ascending {origin.modified} "
                    "order; cannot split the read safely"
                )
            else:
                keyset = keyset.after(t, ident)
            fresh.append(row)
            positions.append(keyset.dump())
        return fresh, positions, keyset

    async def get(self, request: GetRequest) -> Mapping[str, Any] | None:
        origin = self._origin(request.origin, request.entity)
        ident = request.id_values[0].strip() if len(request.id_values) == 1 else ""
        if not ident.isdigit():
            return None  # HubSpot object ids are numbers: there is no such record
        path = f"/crm/v3/objects/{origin.object}/{quote(ident, safe='')}"
        params = {"properties": ",".join(self._properties(origin, request.paths)),
                  "archived": "false"}
        body = await self.api.get_json(self.api.url(path), params, missing_ok=True)
        if body is None:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise self.api.error(f"GET {path}: the answer is not a HubSpot object")
        await self._associate(origin, [body])
        lines = self._lines(origin, request.lines, request.entity)
        if lines is not None:
            await self._attach_lines(origin, lines, [body])
        return body

    # --- associations ------------------------------------------------------------------------

    async def _associate(self, origin: Origin, rows: list[Row]) -> None:
        """``associated.<type>``: one v4 batch read per association type for these rows."""
        if not origin.associations or not rows:
            return
        ids = [row["id"] for row in rows if isinstance(row.get("id"), str)]
        for kind in origin.associations:
            found: dict[str, str | None] = {}
            if ids:
                path = f"/crm/v4/associations/{origin.object}/{kind}/batch/read"
                body = await self._call("POST", path, json={"inputs": [{"id": i} for i in ids]})
                found = _primary_ids(body)
            for row in rows:
                ident = row.get("id")
                row.setdefault("associated", {})[kind] = (
                    found.get(ident) if isinstance(ident, str) else None
                )

    # --- lines ------------------------------------------------------------------------------

    def _lines(self, origin: Origin, lines: LinesRequest | None, entity: str
               ) -> tuple[Origin, LinesRequest, list[str]] | None:
        """The lines' object, the request, and the properties to read, checked once."""
        if lines is None:
            return None
        line_origin = self._origin(lines.origin, f"{entity}.lines")
        wanted = f"associated.{origin.object}"
        if lines.key != (wanted,):
            raise self.api.error(
                f"lines of {origin.object} are the {line_origin.object} associated with each "
                f"record: write lines.key: {wanted} (got {', '.join(lines.key) or 'nothing'})"
            )
        paths = [p for p in (*lines.paths, *lines.order_by) if p != wanted]
        return line_origin, lines, self._properties(line_origin, paths)

    async def _attach_lines(self, origin: Origin,
                            lines: tuple[Origin, LinesRequest, list[str]],
                            rows: Sequence[Mapping[str, Any]]) -> None:
        """Each row's associated line records under LINES_KEY: one v4 association batch read,
        then the line records by id, 100 a request (HubSpot's batch read limit)."""
        line_origin, request, properties = lines
        headers = [row for row in rows if isinstance(row.get("id"), str)]
        if not headers:
            return
        kind = line_origin.object
        body = await self._call(
            "POST", f"/crm/v4/associations/{origin.object}/{kind}/batch/read",
            json={"inputs": [{"id": row["id"]} for row in headers]})
        linked = _associated_ids(body)
        wanted = list(dict.fromkeys(i for ids in linked.values() for i in ids))
        records: dict[str, Row] = {}
        path = f"/crm/v3/objects/{kind}/batch/read"
        for start in range(0, len(wanted), 100):
            chunk = wanted[start:start + 100]
            found = await self._call("POST", path, json={
                "properties": properties, "inputs": [{"id": i} for i in chunk]})
            for record in self._results(found, path):
                if isinstance(record.get("id"), str):
                    records[record["id"]] = record
        order = request.order_by
        for row in headers:
            mine = []
            for ident in linked.get(row["id"], ()):
                # Associated but not returned (deleted meanwhile): kept, with the reason.
                record = records.get(ident) or {"id": ident, ROW_ERRORS_KEY: [
                    f"{kind} {ident}, associated with {origin.object} {row['id']}, was not "
                    "returned by the batch read"]}
                mine.append({**record, "associated": {origin.object: row["id"]}})
            mine.sort(key=lambda line: tuple(_sort_key(_at(line, p)) for p in order))
            cast(Row, row)[LINES_KEY] = mine

    # --- health and schema ------------------------------------------------------------------

    async def check(self) -> None:
        await self._call("GET", f"/crm/v3/objects/{self.options.check_object}",
                         params={"limit": "1"})

    async def discover(self) -> SourceSchema:
        objects = list(dict.fromkeys([*self.options.discover, *self._seen]))
        tables = []
        for name in objects or [self.options.check_object]:
            origin = self._seen.get(name) or Origin(object=name)
            tables.append(await self._describe(origin))
        return SourceSchema(tuple(tables))

    async def describe(self, origin: Mapping[str, Any]) -> TableInfo | None:
        return await self._describe(self._origin(origin, "describe"))

    async def _describe(self, origin: Origin) -> TableInfo:
        """The object's fields, and each property as ``properties.<name>`` with its type."""
        path = f"/crm/v3/properties/{origin.object}"
        body = await self._call("GET", path, params={"archived": "false"})
        columns = [ColumnInfo(name, kind) for name, kind in _TOP_COLUMNS]
        for item in self._results(body, path):
            name = item.get("name")
            if isinstance(name, str):
                columns.append(ColumnInfo(f"properties.{name}", str(item.get("type", "string"))))
        return TableInfo(origin.object, tuple(columns), ("id",))

    # --- HTTP --------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                    json: Any = None) -> Any:
        url = self.api.url(path)
        # Searches and batch reads only read: the resilience transport may replay such a POST
        # after a 429 or a dropped connection.
        response = await self.api.send(method, url, params=params, json=json,
                                       extensions={READ_ONLY: True})
        body = self.api.parse_json(response)
        if isinstance(body, dict) and body.get("status") == "error":
            raise self.api.error(f"{describe_request(method, url)} answered "
                                 f"{response.status_code} with an error: {_hubspot(body)}")
        return body

    def _results(self, body: Any, path: str) -> list[Row]:
        found = body.get("results") if isinstance(body, dict) else None
        if not isinstance(found, list):
            raise self.api.error(f"{path}: the answer has no list of results")
        return [item if isinstance(item, dict) else quarantined(item, f"{path} result {number}")
                for number, item in enumerate(found, start=1)]

    def _next(self, body: Any, path: str, guard: PageGuard) -> str | None:
        """``paging.next.after``; a token seen before in this read is a server bug, not a loop."""
        paging = body.get("paging") if isinstance(body, dict) else None
        following = paging.get("next") if isinstance(paging, dict) else None
        token = following.get("after") if isinstance(following, dict) else None
        if token is None or token == "":
            return None
        return guard.fresh(str(token), path, f"paging cursor {str(token)!r}")

    def _log_limits(self, response: httpx.Response) -> None:
        remaining = response.headers.get("x-hubspot-ratelimit-remaining")
        if remaining is not None:  # the resilience transport acts on 429 + Retry-After
            self.res.logger.debug(
                "source %r: %s: HubSpot rate limit remaining %s of %s per %s ms, daily %s",
                self.res.source, describe_request(response.request.method, response.request.url),
                remaining,
                response.headers.get("x-hubspot-ratelimit-max", "?"),
                response.headers.get("x-hubspot-ratelimit-interval-milliseconds", "?"),
                response.headers.get("x-hubspot-ratelimit-daily-remaining", "?"),
            )

    # --- plumbing ----------------------------------------------------------------------------

    def _properties(self, origin: Origin, paths: Sequence[str]) -> list[str]:
        """The properties to request: those the mapping reads, and the modification time."""
        names: dict[str, None] = {}
        for path in paths:
            head = path.split(".", 1)[0]
            if head == "properties":
                name = property_of(path, origin) or path.split(".")[1]
                names[name] = None
            elif head not in TOP_LEVEL:
                raise self.api.error(
                    f"{origin.object}: the mapping reads {path!r}, which a HubSpot object does "
                    f"not have; properties are read as properties.{path} (top-level fields: "
                    f"{', '.join(sorted(TOP_LEVEL))})"
                )
            elif head == "associated" and path.split(".")[1:2] and (
                path.split(".")[1] not in origin.associations
            ):
                raise self.api.error(
                    f"{origin.object}: the mapping reads {path!r}; list "
                    f"{path.split('.')[1]!r} in from.associations"
                )
        for name in origin.properties:
            names[name] = None
        names[origin.modified] = None
        return list(names)

    def _origin(self, origin: Mapping[str, Any], entity: str) -> Origin:
        try:
            parsed = Origin.model_validate(dict(origin))
        except ValidationError as exc:
            raise self.api.error(f"entities.{entity}.from: {invalid_block(exc)}") from None
        self._seen.setdefault(parsed.object, parsed)
        return parsed


# --- helpers ---------------------------------------------------------------------------------


def _list_position(position: Position | None) -> tuple[str | None, int | None]:
    if position is None:
        return None, 0
    if isinstance(position, Mapping) and set(position) == {"after", "skip"}:
        after, skip = position["after"], position["skip"]
        if (after is None or isinstance(after, str)) and type(skip) is int and skip >= 0:
            return after, skip
    return None, None


def _list_positions(after: str | None, skip: int) -> Callable[[int], Position]:
    def position_after(index: int) -> dict[str, Any]:
        return {"after": after, "skip": skip + index + 1}

    return position_after


def _primary_ids(body: Any) -> dict[str, str | None]:
    """From a v4 batch read: each record's primary association, else its only one, else the
    lowest id (records without associations are simply absent, or listed under errors)."""
    out: dict[str, str | None] = {}
    results = body.get("results") if isinstance(body, dict) else None
    for result in results if isinstance(results, list) else ():
        if not isinstance(result, dict):
            continue
        source = result.get("from")
        ident = source.get("id") if isinstance(source, dict) else None
        targets = [t for t in result.get("to") or () if isinstance(t, dict)
                   and t.get("toObjectId") is not None]
        if ident is None or not targets:
            continue
        primary = [t for t in targets if any(
            isinstance(a, dict) and a.get("label") == "Primary"
            for a in t.get("associationTypes") or ())]
        chosen = primary or sorted(targets, key=lambda t: int(t["toObjectId"]))
        out[str(ident)] = str(chosen[0]["toObjectId"])
    return out


def _associated_ids(body: Any) -> dict[str, list[str]]:
    """From a v4 batch read: each record's associated ids, lowest first."""
    out: dict[str, list[str]] = {}
    results = body.get("results") if isinstance(body, dict) else None
    for result in results if isinstance(results, list) else ():
        source = result.get("from") if isinstance(result, dict) else None
        ident = source.get("id") if isinstance(source, dict) else None
        targets = sorted(int(t["toObjectId"]) for t in result.get("to") or ()
                         if isinstance(t, dict) and t.get("toObjectId") is not None)
        if ident is not None:
            out[str(ident)] = [str(t) for t in dict.fromkeys(targets)]
    return out


def _at(row: Mapping[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    """Lines sort on HubSpot's text values: numbers as numbers, missing values last."""
    if value is None or value == "":
        return (2, "")
    try:
        return (0, float(value))
    except (TypeError, ValueError):
        return (1, str(value))


def _explain(status: int, body: Any) -> str:
    """HubSpot's message on a refused request, and what to check after a 401 or 403."""
    message = f": {_hubspot(body)}" if isinstance(body, dict) and body.get("message") else ""
    if status in (401, 403):
        message += (" (check the private-app token or OAuth grant and its scopes, e.g. "
                    "crm.objects.contacts.read)")
    return message


def _hubspot(body: Mapping[str, Any]) -> str:
    """HubSpot's error message and category, kept short."""
    message = str(body.get("message") or "no message")
    category = body.get("category")
    text = f"{message} ({category})" if category else message
    return text if len(text) <= 300 else text[:297] + "..."
