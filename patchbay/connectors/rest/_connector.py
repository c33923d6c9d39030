"""The ``rest`` connector: any JSON API described in config, through the Hub's client.

A read GETs the entity's ``endpoint`` (relative to ``base_url``) with its fixed ``params``, the
pushed-down filters and ``since``, takes the list at ``records`` from each JSON body and asks its
paginator for the next page, until an empty page, the paginator's end, or ``page_cap`` pages (an
error: a read never stops silently). Only ``base_url``'s origin (scheme, host, port) is ever
called: a next URL or Link header pointing elsewhere is refused, so credentials stay there.

A position is ``{"page": <paginator state>, "skip": <records of that page already read>}``: a
resume fetches that page again and skips what was read. Errors name the source and its owner and
describe a request as method + host + path, never the query string (it may hold a key).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from patchbay.connectors._http import JsonApi, PageGuard, describe_request, json_type, quarantined
from patchbay.core.connector import (
    Batch,
    Capability,
    ColumnInfo,
    Connector,
    GetRequest,
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
from patchbay.core.mapping import ROW_ERRORS_KEY

from ._paginators import MISSING, Paginator, State, at_path, paginator
from ._spec import Origin, RestSettings, Since

__all__ = ["RestConnector"]

Row = dict[str, Any]


class RestConnector(Connector):
    """JSON over HTTP(S); the client (auth, retries, rate limit, breaker) comes from the Hub."""

    kind = "rest"
    Settings = RestSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.READ, Capability.GET, Capability.INCREMENTAL, Capability.DISCOVER,
         Capability.CHECK}
    )
    pushdown: ClassVar[frozenset[Op]] = frozenset({Op.EQ, Op.GTE})  # refined by accepts()
    resources = frozenset({"http_client"})

    def __init__(self, settings: RestSettings, resources: Resources) -> None:
        super().__init__(settings, resources)
        self.options = settings
        self.api = JsonApi(resources, settings.base_url, headers=settings.headers,
                           observe=self._log_limits)
        self._seen: dict[str, Origin] = {}  # origins read so far, by endpoint (for discover)

    # --- planning ----------------------------------------------------------------------------

    def accepts(self, request: ReadRequest, condition: SourceFilter) -> bool:
        """``eq`` on a declared filter path, and ``since`` (``>=`` on ``since.path``)."""
        origin = self._origin(request.origin, f"entities.{request.entity}")
        if condition.fold:
            return False
        if condition.op is Op.EQ and condition.path in origin.filters:
            return _param_text(condition.value) is not None
        if condition.op is Op.GTE and origin.since is not None:
            return condition.path == origin.since.path and isinstance(condition.value, date)
        return False

    def can_order(self, request: ReadRequest, order: SourceOrder) -> bool:
        return False  # records come in the API's order

    # --- reading -----------------------------------------------------------------------------

    async def read(self, request: ReadRequest) -> AsyncGenerator[Batch, None]:
        origin = self._origin(request.origin, f"entities.{request.entity}")
        if request.order:
            raise self.api.error("the rest connector cannot sort; records come in the API's order")
        if request.lines is not None:
            raise self.api.error("the rest connector does not read lines from a second endpoint")
        params = self._params(origin, request.filters)
        pages = paginator(origin.pagination, origin.stop)
        state, skip = self._resume(request.position, pages)
        # A cursor or next URL the API sends again would read the same pages forever.
        guard = PageGuard(self.api, cap=self.options.page_cap, seen=[_page_key(state)])
        while True:
            guard.count(origin.endpoint)
            response, body, rows = await self._page(origin, pages, state, params)
            if not rows:
                return
            following = None if _no_more(body, origin) else pages.advance(
                state, len(rows), response, body
            )
            if skip < len(rows):
                yield Batch(rows[skip:], _positions(state, skip))
            if following is None:
                return
            guard.fresh(_page_key(following), origin.endpoint, _what_page(following))
            state, skip = following, 0

    async def _page(self, origin: Origin, pages: Paginator, state: State,
                    params: Mapping[str, str]) -> tuple[httpx.Response, Any, list[Row]]:
        call = pages.call(state)
        if call.url is None:
            url, query = self.api.url(origin.endpoint), {**params, **call.params}
        else:
            url, query = self.api.same_origin(call.url, origin.endpoint), {}
        response = await self.api.send("GET", url, params=query)
        body = self.api.parse_json(response, origin.endpoint)
        return response, body, self._records(body, origin)

    def _records(self, body: Any, origin: Origin) -> list[Row]:
        found = at_path(body, origin.records)
        if not isinstance(found, list):
            what = "nothing" if found is MISSING else f"a JSON {json_type(found)}"
            raise self.api.error(
                f"{origin.endpoint}: no list of records at records path "
                f"{origin.records or '(the body)'!r}: found {what}"
            )
        return [item if isinstance(item, dict) else
                quarantined(item, f"{origin.endpoint} record {number}")
                for number, item in enumerate(found, start=1)]

    def _params(self, origin: Origin, filters: Sequence[SourceFilter]) -> dict[str, str]:
        params = {name: _param_text(value) or "" for name, value in origin.params.items()}
        for condition in filters:
            if condition.op is Op.EQ and condition.path in origin.filters:
                params[origin.filters[condition.path]] = _param_text(condition.value) or ""
            elif condition.op is Op.GTE and origin.since is not None:
                params[origin.since.param] = _since_text(condition.value, origin.since)
            else:  # the Hub only sends what accepts() took
                raise self.api.error(f"cannot push {condition.path} {condition.op} to the API")
        return params

    def _resume(self, position: Position | None, pages: Paginator) -> tuple[State, int]:
        if position is None:
            return pages.start(), 0
        if isinstance(position, Mapping) and set(position) == {"page", "skip"}:
            state, skip = position["page"], position["skip"]
            if type(skip) is int and skip >= 0 and pages.valid(state):
                return state, skip
        raise self.api.error(
            f"cannot resume from position {position!r}: expected {{'page': STATE, 'skip': N}}"
        )

    async def get(self, request: GetRequest) -> Mapping[str, Any] | None:
        """By the ``detail`` endpoint when declared (and the id has one part); else a scan."""
        origin = self._origin(request.origin, f"entities.{request.entity}")
        wanted = tuple(v.strip() for v in request.id_values)
        if origin.detail is not None and len(wanted) == 1:
            path = origin.detail.replace("{id}", quote(wanted[0], safe=""))
            body = await self.api.get_json(self.api.url(path), where=origin.detail,
                                           missing_ok=True)
            if body is None:
                return None
            found = at_path(body, origin.detail_record)
            if not isinstance(found, dict):
                raise self.api.error(
                    f"{origin.detail}: no JSON object at detail_record "
                    f"{origin.detail_record or '(the body)'!r}"
                )
            return found
        scan = ReadRequest(request.entity, request.origin, request.id_paths, request.paths)
        async with contextlib.aclosing(self.read(scan)) as batches:
            async for batch in batches:
                for row in batch.rows:
                    if _key(row, request.id_paths) == wanted:
                        return row
        return None

    # --- health and schema ------------------------------------------------------------------

    async def check(self) -> None:
        url = self.api.url(self.options.health) if self.options.health else self.api.base_url
        await self.api.send("GET", url)

    async def discover(self) -> SourceSchema:
        """One table per endpoint: those in ``settings.discover`` and those read so far."""
        origins = {o.endpoint: o for o in self.options.discover}
        origins.update(self._seen)
        tables = []
        for origin in origins.values():
            tables.append(await self._describe(origin))
        return SourceSchema(tuple(tables))

    async def describe(self, origin: Mapping[str, Any]) -> TableInfo | None:
        return await self._describe(self._origin(origin, "describe"))

    async def _describe(self, origin: Origin) -> TableInfo:
        """The keys of the first page's records, with their JSON types."""
        pages = paginator(origin.pagination, origin.stop)
        _, _, rows = await self._page(origin, pages, pages.start(), self._params(origin, ()))
        types: dict[str, str] = {}
        nullable: set[str] = set()
        for row in rows:
            if ROW_ERRORS_KEY in row:
                continue
            for name, value in row.items():
                kind = json_type(value)
                if kind == "null":
                    nullable.add(name)
                    types.setdefault(name, "null")
                elif types.get(name) in (None, "null"):
                    types[name] = kind
                elif {types[name], kind} == {"integer", "number"}:
                    types[name] = "number"
        for row in rows:
            nullable.update(name for name in types if name not in row)
        columns = tuple(ColumnInfo(n, t, n in nullable) for n, t in types.items())
        return TableInfo(origin.endpoint, columns)

    # --- HTTP --------------------------------------------------------------------------------

    def _log_limits(self, response: httpx.Response) -> None:
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is not None:  # the resilience transport acts on 429 + Retry-After
            self.res.logger.debug(
                "source %r: %s: rate limit remaining %s, reset %s", self.res.source,
                describe_request(response.request.method, response.request.url), remaining,
                response.headers.get("x-ratelimit-reset", "?"),
            )

    # --- plumbing ----------------------------------------------------------------------------

    def _origin(self, origin: Mapping[str, Any], where: str) -> Origin:
        try:
            parsed = Origin.model_validate(dict(origin))
        except ValidationError as exc:
            raise self.api.error(
                f"invalid from: block: {invalid_block(exc, f'{where}.from')}"
            ) from None
        self._seen.setdefault(parsed.endpoint, parsed)
        return parsed


# --- helpers ---------------------------------------------------------------------------------


def _positions(state: State, skip: int) -> Callable[[int], Position]:
    def position_after(index: int) -> dict[str, Any]:
        return {"page": state, "skip": skip + index + 1}

    return position_after


def _no_more(body: Any, origin: Origin) -> bool:
    if origin.stop.has_more_path is None:
        return False
    return at_path(body, origin.stop.has_more_path) is False


def _key(row: Mapping[str, Any], paths: Sequence[str]) -> tuple[str | None, ...]:
    values = (at_path(row, p) for p in paths)
    return tuple(None if v is MISSING or v is None else str(v).strip() for v in values)


def _param_text(value: Any) -> str | None:
    """A filter value as a query parameter; None when it has no plain text form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str | int | float | Decimal):
        return str(value)
    return None


def _since_text(value: Any, since: Since) -> str:
    moment = value if isinstance(value, datetime) else datetime(value.year, value.month,
                                                                 value.day)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if since.format == "date":
        return moment.date().isoformat()
    if since.format == "epoch":
        return str(int(moment.timestamp()))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")




def _page_key(state: State) -> str:
    return json.dumps(state, sort_keys=True)


def _what_page(state: State) -> str:
    if isinstance(state, str) and "://" in state:
        return f"next page ({describe_request('GET', state)})"
    return "next page cursor" if isinstance(state, str) else "next page"
