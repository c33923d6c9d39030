"""The ``salesforce`` connector: SOQL over the REST API, through the Hub's client.

A read is one SOQL query, ``SELECT <mapped fields> FROM <object> WHERE <pushed filters> ORDER BY
SystemModstamp, Id``, paged by the API's ``nextRecordsUrl`` until ``done``. Lines (Order ->
OrderItems) come in the same query as a subquery on the child relationship; a child list longer
than one batch is completed from its own ``nextRecordsUrl``.

Positions are keyset values, ``{"after": [SystemModstamp, Id]}``, never a query locator: locators
expire (15 minutes unused, and a user holds only a few at once), so a resume runs the query again
with ``SystemModstamp > t OR (SystemModstamp = t AND Id > id)``; a locator that expires in the
middle of a read (the caller paused) is replaced the same way. A record changed during a read
moves to the end and may be delivered again with its new values; none is skipped.

Next pages are followed only on ``instance_url``'s origin, a locator seen twice is an error (a
server bug that would loop forever), and so is a page that is not JSON or a 200 carrying
Salesforce's error list. Errors name the source, its owner, the object and Salesforce's
``errorCode``; Salesforce's message is quoted without the query it echoes and without any filter
value patchbay sent (those may be personal data). Requests are described as method + host + path:
the SOQL travels in the query string and is never put into an error.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from patchbay.connectors._http import JsonApi, PageGuard, describe_request, quarantined
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
)
from patchbay.core.errors import SourceError
from patchbay.core.filters import Op
from patchbay.core.mapping import LINES_KEY, ROW_ERRORS_KEY

from . import _soql as soql
from ._preset import preset_entities
from ._spec import LinesOrigin, Origin, SalesforceSettings, problems

__all__ = ["ApiUsage", "SalesforceConnector"]

Row = dict[str, Any]
MODSTAMP = "SystemModstamp"
_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?\Z")
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
USAGE_WARNING = 0.9  # share of the org's daily API requests that is worth a warning


class _LocatorExpired(SourceError):
    """A ``nextRecordsUrl`` Salesforce no longer knows (unused for 15 minutes)."""


MAX_RESTARTS = 3  # re-runs of one read after expired locators before giving up


@dataclass(frozen=True)
class ApiUsage:
    """The org's daily API requests, from the last ``Sforce-Limit-Info`` header seen."""

    used: int
    limit: int


class SalesforceConnector(Connector):
    """Salesforce REST API (SOQL); auth, retries, rate limit and breaker come from the Hub."""

    kind = "salesforce"
    Settings = SalesforceSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.READ, Capability.GET, Capability.INCREMENTAL, Capability.DISCOVER,
         Capability.CHECK}
    )
    pushdown: ClassVar[frozenset[Op]] = frozenset(Op)  # refined per condition by accepts()
    resources = frozenset({"http_client"})
    origin_model = Origin
    # The SOQL, filter values included (personal data, possibly), travels in ``q``: it must not
    # reach httpx's request log. Declared for the Hub to install a redactor (not honoured yet).
    redact_params: ClassVar[frozenset[str]] = frozenset({"q"})

    def __init__(self, settings: SalesforceSettings, resources: Resources) -> None:
        super().__init__(settings, resources)
        self.options = settings
        self.api = JsonApi(resources, settings.instance_url, setting="instance_url",
                           observe=self._note_usage)
        self.api_usage: ApiUsage | None = None
        self._warned = False
        self._seen: dict[str, Origin] = {}  # objects read so far (for discover)

    # --- config --------------------------------------------------------------------------------

    @classmethod
    def preset_entities(cls, settings: BaseModel) -> Mapping[str, Mapping[str, Any]]:
        assert isinstance(settings, SalesforceSettings)
        return preset_entities(settings)

    # --- planning ----------------------------------------------------------------------------

    def accepts(self, request: ReadRequest, condition: SourceFilter) -> bool:
        return soql.pushable(condition)

    def can_order(self, request: ReadRequest, order: SourceOrder) -> bool:
        return False  # records come by (SystemModstamp, Id), the order positions resume in

    # --- reading -----------------------------------------------------------------------------

    async def read(self, request: ReadRequest) -> AsyncGenerator[Batch, None]:
        origin = self._origin(request.origin, f"entities.{request.entity}")
        if request.order:
            raise self.api.error("the salesforce connector cannot sort; records come by "
                                 "SystemModstamp, Id")
        lines = self._lines(request.lines, request.entity)
        conditions = [soql.condition(c) for c in request.filters]
        redact = _filter_values(request.filters)
        batch_size = min(2000, max(200, request.batch_size))
        after = self._after(request.position)
        for restart in range(MAX_RESTARTS + 1):
            keyset = [] if after is None else [_keyset(*after)]
            query = self._query(origin, request.paths, [*conditions, *keyset], lines)
            try:
                async for rows in self._pages(origin.object, query, redact, batch_size):
                    checked = [await self._row(row, origin.object, request.paths, lines, redact)
                               for row in rows]
                    positions = self._positions(checked, origin.object)
                    yield Batch(checked, positions)
                    if checked:
                        after = self._after(positions(len(checked) - 1))
                return
            except _LocatorExpired:
                # The caller paused longer than Salesforce keeps a locator: run the query again
                # after the last record delivered, as a resume from a cursor would.
                if restart == MAX_RESTARTS:
                    raise
                self.res.logger.info("source %r: %s query locator expired; querying again "
                                     "after the last record read", self.res.source,
                                     origin.object)

    def _query(self, origin: Origin, paths: Iterable[str], conditions: Sequence[str],
               lines: tuple[LinesRequest, LinesOrigin] | None) -> soql.Query:
        fields = [*_fields(paths, origin.object, self.api.error), MODSTAMP, "Id"]
        where = [origin.where, *conditions] if origin.where else list(conditions)
        subqueries = []
        if lines is not None:
            spec, child = lines
            subqueries.append(soql.Query(
                fields=[*_fields([*spec.key, *spec.paths], child.object, self.api.error), "Id"],
                sobject=child.relationship,
                order_by=[*(soql.name(p) for p in spec.order_by), "Id"],
            ))
        return soql.Query(fields, origin.object, where, [MODSTAMP, "Id"], subqueries)

    async def _pages(self, sobject: str, query: soql.Query, redact: Sequence[str],
                     batch_size: int | None = None) -> AsyncGenerator[list[Row], None]:
        """The ``records`` of each page until ``done``; locators are followed, never reused."""
        url, params = self._data_url("query"), {"q": query.soql()}
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else {}
        guard = PageGuard(self.api, cap=self.options.page_cap)
        while True:
            what = f"{sobject} query page {guard.count(f'{sobject} query')}"
            body = await self._get_json(url, params, what, redact, headers=headers)
            records, following = self._result(body, what)
            yield records
            if following is None:
                return
            guard.fresh(following, what, "nextRecordsUrl")
            url, params = self.api.same_origin(following, what), {}

    def _result(self, body: Any, what: str) -> tuple[list[Row], str | None]:
        """A query result's records, and the next page's URL (None when ``done``)."""
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise self.api.error(f"{what}: not a query result (no list of records)")
        done = body.get("done")
        if not isinstance(done, bool):
            raise self.api.error(f"{what}: the query result has no 'done' flag")
        if done:
            return body["records"], None
        following = body.get("nextRecordsUrl")
        if not isinstance(following, str) or not following:
            raise self.api.error(f"{what}: 'done' is false but there is no nextRecordsUrl")
        return body["records"], following

    async def _row(self, record: Any, sobject: str, paths: Sequence[str],
                   lines: tuple[LinesRequest, LinesOrigin] | None, redact: Sequence[str]) -> Row:
        """A record without ``attributes``, its lines under LINES_KEY, and what is wrong with it
        under ROW_ERRORS_KEY (so the mapping quarantines it instead of losing it)."""
        if not isinstance(record, dict):
            return quarantined(record, f"{sobject} record")
        row = {k: v for k, v in record.items() if k != "attributes"}
        reasons = _missing(row, [*paths, "Id", MODSTAMP], sobject)
        if lines is not None:
            spec, child = lines
            found = row.pop(child.relationship, None)
            line_rows, line_reasons = await self._line_rows(found, child, spec, redact)
            row[LINES_KEY] = line_rows
            reasons += line_reasons
        if reasons:
            row[ROW_ERRORS_KEY] = reasons
        return row

    async def _line_rows(self, found: Any, child: LinesOrigin, spec: LinesRequest,
                         redact: Sequence[str]) -> tuple[list[Row], list[str]]:
        if found is None:  # Salesforce sends null for a parent without children
            return [], []
        what = f"{child.relationship} subquery"
        if not isinstance(found, dict):
            return [], [f"{what}: not a query result"]
        records, following = self._result(found, what)
        guard = PageGuard(self.api, cap=self.options.page_cap)
        while following is not None:  # more lines than one batch: the child locator
            guard.count(what)
            guard.fresh(following, what, "nextRecordsUrl")
            body = await self._get_json(self.api.same_origin(following, what), {}, what, redact)
            more, following = self._result(body, what)
            records = [*records, *more]
        rows: list[Row] = []
        reasons: list[str] = []
        for number, line in enumerate(records, start=1):
            if not isinstance(line, dict):
                reasons.append(f"{what} record {number}: not a JSON object")
                continue
            clean = {k: v for k, v in line.items() if k != "attributes"}
            reasons += _missing(clean, [*spec.key, *spec.paths], child.object)
            rows.append(clean)
        return rows, reasons

    def _positions(self, rows: Sequence[Row], sobject: str) -> Callable[[int], Position]:
        keys: list[list[str] | None] = []
        for row in rows:
            stamp, ident = row.get(MODSTAMP), row.get("Id")
            if not isinstance(stamp, str) or not isinstance(ident, str):
                keys.append(None)  # quarantined for its missing fields; resume after the last
            else:
                keys.append([stamp, ident])

        def position_after(index: int) -> Position:
            for key in reversed(keys[: index + 1]):
                if key is not None:
                    return {"after": key}
            raise self.api.error(f"{sobject}: cannot resume after records without "
                                 f"{MODSTAMP} and Id")

        return position_after

    def _after(self, position: Position | None) -> tuple[datetime, str] | None:
        if position is None:
            return None
        if isinstance(position, Mapping) and set(position) == {"after"}:
            key = position["after"]
            if isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key):
                with contextlib.suppress(ValueError):
                    stamp = datetime.fromisoformat(key[0])
                    if stamp.tzinfo is not None:
                        return stamp, key[1]
        raise self.api.error(f"cannot resume from position {position!r}: expected "
                             "{'after': [SystemModstamp, Id]}")

    # --- get ---------------------------------------------------------------------------------

    async def get(self, request: GetRequest) -> Mapping[str, Any] | None:
        """``sobjects/{Object}/{Id}`` for a plain Id; a query when lines, relationship fields,
        another key or the origin's ``where`` are involved."""
        origin = self._origin(request.origin, f"entities.{request.entity}")
        wanted = tuple(v.strip() for v in request.id_values)
        plain = all("." not in p for p in request.paths)
        if (request.id_paths == ("Id",) and request.lines is None and plain
                and origin.where is None):
            if not _ID.match(wanted[0]):
                return None  # not a Salesforce Id: no such record
            selected = [*_fields(request.paths, origin.object, self.api.error), MODSTAMP, "Id"]
            fields = ",".join(dict.fromkeys(selected))
            path = f"sobjects/{origin.object}/{quote(wanted[0], safe='')}"
            body = await self._get_json(self._data_url(path), {"fields": fields},
                                        f"{origin.object} {wanted[0]}", (), missing_ok=True)
            if body is None:
                return None
            return await self._row(body, origin.object, request.paths, None, ())
        lines = self._lines(request.lines, request.entity)
        keys = [SourceFilter(p, Op.EQ, v) for p, v in zip(request.id_paths, wanted, strict=True)]
        query = self._query(origin, request.paths, [soql.condition(k) for k in keys], lines)
        async with contextlib.aclosing(self._pages(origin.object, query, wanted)) as pages:
            async for rows in pages:
                for row in rows:
                    return await self._row(row, origin.object, request.paths, lines, wanted)
        return None

    # --- health and schema ------------------------------------------------------------------

    async def check(self) -> None:
        await self._get_json(self._data_url(""), {}, "the API's resource list", ())

    async def discover(self) -> SourceSchema:
        """The preset's objects and those read so far, as ``describe`` lists their fields."""
        names = {o["from"]["object"] for o in preset_entities(self.options).values()}
        names.update(self._seen)
        tables = [await self._describe(name) for name in sorted(names)]
        return SourceSchema(tuple(tables))

    async def describe(self, origin: Mapping[str, Any]) -> TableInfo | None:
        """The object of an entity's ``from:``, or of its lines' (the child object)."""
        if "relationship" in origin:
            return await self._describe(self._child(origin, "describe").object)
        return await self._describe(self._origin(origin, "describe").object)

    async def _describe(self, sobject: str) -> TableInfo:
        body = await self._get_json(self._data_url(f"sobjects/{sobject}/describe"), {},
                                    f"{sobject} describe", ())
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, list):
            raise self.api.error(f"{sobject} describe: no list of fields in the answer")
        columns: list[ColumnInfo] = []
        for item in fields:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                continue
            nullable = bool(item.get("nillable", True))
            columns.append(ColumnInfo(item["name"], str(item.get("type", "?")), nullable))
            relation = item.get("relationshipName")
            if isinstance(relation, str) and relation:  # Account of AccountId: Account.Name
                columns.append(ColumnInfo(relation, "relationship", nullable))
        return TableInfo(sobject, tuple(columns), ("Id",))

    # --- HTTP --------------------------------------------------------------------------------

    def _data_url(self, path: str) -> str:
        return self.api.url(f"services/data/v{self.options.api_version}/{path}")

    async def _get_json(self, url: str, params: Mapping[str, str], what: str,
                        redact: Sequence[str], *, missing_ok: bool = False,
                        headers: Mapping[str, str] | None = None) -> Any:
        """The body of a GET; Salesforce's error list (in a 200 too) becomes the error, without
        the values in ``redact``."""
        response = await self.api.request("GET", url, params=params, headers=headers, where=what)
        status = response.status_code
        if status == 404 and missing_ok:
            return None
        if status == 429 or status >= 500:  # maintenance pages are HTML: the status tells
            try:
                body = response.json()
            except ValueError:
                raise self.api.refusal(response, what) from None
        else:
            body = self.api.parse_json(response, what)
        errors = _salesforce_errors(body)
        if response.is_success and errors is None:
            return body
        said = _said(errors, redact)
        if response.is_success:
            raise self.api.error(f"{what}: {describe_request('GET', response.request.url)} "
                                 f"answered {status} with an error{said}")
        refused = self.api.refusal(response, what, detail=said)
        codes = {code for code, _ in errors or ()}
        if status == 401:
            raise self.api.error(f"{refused.detail}: the session was refused even after a new "
                                 "token; check the source's auth settings and the connected app")
        if status == 403 and "REQUEST_LIMIT_EXCEEDED" in codes:
            raise self.api.unavailable(f"{refused.detail}: the org's API request limit is used "
                                       f"up{self._usage_text()}")
        if 400 <= status < 500 and status != 429:
            if "INVALID_QUERY_LOCATOR" in codes:
                raise _LocatorExpired(self.api.source, refused.detail, owner=self.api.owner)
            if codes & {"INVALID_FIELD", "INVALID_TYPE"}:
                raise self.api.error(f"{refused.detail}: check the field and object names in "
                                     "the mapping")
        raise refused

    def _note_usage(self, response: httpx.Response) -> None:
        """``Sforce-Limit-Info: api-usage=25/15000``: logged, counted, kept in ``api_usage``."""
        found = _USAGE.search(response.headers.get("sforce-limit-info", ""))
        if found is None:
            return
        usage = ApiUsage(int(found.group(1)), int(found.group(2)))
        self.api_usage = usage
        self.res.logger.debug("source %r: Salesforce API usage %d/%d", self.res.source,
                              usage.used, usage.limit)
        # The Hub's event sink, when it hands one to connectors (Resources.events).
        events = getattr(self.res, "events", None)
        if events is None:
            return
        events.count("salesforce_api_requests", self.res.source)
        high = usage.limit > 0 and usage.used >= USAGE_WARNING * usage.limit
        if high and not self._warned:
            self._warned = True
            events.emit("salesforce_api_usage_high", self.res.source,
                        f"source {self.res.source!r}: Salesforce API usage {usage.used}/"
                        f"{usage.limit} of the org's daily requests", level=logging.WARNING,
                        used=usage.used, limit=usage.limit)

    def _usage_text(self) -> str:
        usage = self.api_usage
        return f" ({usage.used}/{usage.limit} today)" if usage else ""

    # --- plumbing ----------------------------------------------------------------------------

    def _origin(self, origin: Mapping[str, Any], where: str) -> Origin:
        try:
            parsed = Origin.model_validate(dict(origin))
        except ValidationError:
            raise self.api.error(f"invalid from: block at {where}.from: "
                                 f"{problems(Origin, origin)}") from None
        self._seen.setdefault(parsed.object, parsed)
        return parsed

    def _lines(self, lines: LinesRequest | None, entity: str
               ) -> tuple[LinesRequest, LinesOrigin] | None:
        if lines is None:
            return None
        return lines, self._child(lines.origin, f"entities.{entity}.lines")

    def _child(self, origin: Mapping[str, Any], where: str) -> LinesOrigin:
        try:
            return LinesOrigin.model_validate(dict(origin))
        except ValidationError:
            raise self.api.error(f"invalid from: block at {where}.from: "
                                 f"{problems(LinesOrigin, origin)}") from None


# --- helpers ---------------------------------------------------------------------------------


def _keyset(stamp: datetime, ident: str) -> str:
    """Rows after ``(stamp, ident)`` in ``ORDER BY SystemModstamp, Id``."""
    moment, key = soql.datetime_literal(stamp), soql.literal(ident)
    return f"{MODSTAMP} > {moment} OR ({MODSTAMP} = {moment} AND Id > {key})"


def _fields(paths: Iterable[str], sobject: str,
            error: Callable[[str], SourceError]) -> list[str]:
    out = []
    for path in paths:
        if not soql.is_name(path):
            raise error(f"{sobject}: {path!r} is not a field's API name (Name, Custom__c, "
                        "Account.Name)")
        out.append(path)
    return out


def _missing(row: Row, paths: Iterable[str], sobject: str) -> list[str]:
    """Selected fields the record lacks (Salesforce sends every one, null when empty). A field
    written in another case than the API's is copied under the mapping's spelling."""
    gone = []
    for path in dict.fromkeys(p.split(".", 1)[0] for p in paths):
        if path in row:
            continue
        same = next((k for k in row if k.lower() == path.lower()), None)
        if same is not None:
            row[path] = row[same]
        else:
            gone.append(path)
    if not gone:
        return []
    ident = row.get("Id") if isinstance(row.get("Id"), str) else "(no Id)"
    return [f"{sobject} {ident}: the answer has no field {', '.join(map(repr, gone))}"]


def _filter_values(filters: Iterable[SourceFilter]) -> list[str]:
    values: list[str] = []
    for condition in filters:
        items = condition.value if isinstance(condition.value, tuple) else (condition.value,)
        values.extend(str(v) for v in items if isinstance(v, str) and v)
    return values


def _salesforce_errors(body: Any) -> list[tuple[str, str]] | None:
    """Salesforce's error list ``[{"message": …, "errorCode": …}]``, or None when not one."""
    if isinstance(body, dict) and isinstance(body.get("errorCode"), str):
        body = [body]
    if not isinstance(body, list) or not body:
        return None
    found = [(str(e["errorCode"]), str(e.get("message", ""))) for e in body
             if isinstance(e, dict) and "errorCode" in e]
    return found or None


def _said(errors: list[tuple[str, str]] | None, redact: Sequence[str]) -> str:
    """``: MALFORMED_QUERY: unexpected token …``: Salesforce's message without the query it
    echoes (lines before ``ERROR at Row``) and without any value patchbay put into it."""
    if not errors:
        return ""
    parts = []
    for code, message in errors[:3]:
        lines = message.strip().splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("ERROR at Row")), 0)
        text = " ".join(line.strip() for line in lines[start:] if line.strip())
        for value in sorted(redact, key=len, reverse=True):
            text = text.replace(value, "…")
            text = text.replace(soql.literal(value)[1:-1], "…")
        parts.append(f"{code}: {text[:300]}" if text else code)
    return ": " + "; ".join(parts)
