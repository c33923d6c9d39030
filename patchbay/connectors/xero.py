"""The ``xero`` connector: the Xero Accounting API (contacts, invoices with line items, items).

A small connector of its own rather than a ``rest`` configuration: Xero sends ``since`` as the
``If-Modified-Since`` *header*, filters as one ``where`` *expression* (``Name=="Acme" AND
Status=="AUTHORISED"``), needs the ``xero-tenant-id`` header of the tenant being read, embeds
invoice lines in the invoice, and writes dates as ``/Date(1518685950940+0000)/``; the declarative
REST connector has no place for any of these.

* Paging: ``page`` (from 1) and ``pageSize`` (1-1000) on the endpoints Xero pages (Contacts,
  Invoices, ...); a read stops at a short or empty page or at ``pagination.pageCount``. An
  endpoint Xero does not page (Items, Accounts) is one request. ``page_cap`` pages is an error,
  never a silent stop, and so is a page with exactly the records of the page before (a server
  ignoring ``page`` would otherwise be read until the cap).
* Push-down: ``eq`` and ``in`` on plain paths become ``where`` clauses (strings in double quotes
  with ``"`` doubled, as Xero's expression parser reads them; ``Guid("...")`` for ``...ID``
  paths; ``true``/``false``; integers), joined with ``AND`` to the binding's own ``where``.
  Everything is re-checked in memory by the Hub, so a case-insensitive match at Xero is safe.
* ``since``: ``UpdatedDateUTC >= t`` is sent as ``If-Modified-Since: <t, UTC, ISO 8601>``.
* ``get``: the list endpoint with ``where`` on the id (so the binding's own ``where`` still
  applies: a bill is not returned as a sales invoice).
* Rows: every ``/Date(ms±zzzz)/`` becomes ISO 8601 UTC text; ``Phones`` and ``Addresses`` are
  also given keyed by type (``PhonesByType.DEFAULT``, ``AddressesByType.POBOX.City``) because a
  mapping path cannot pick a list element by its type.
* Lines: a ``lines.from`` of ``{embedded: LineItems, inherit: [CurrencyCode]}`` takes the line
  rows from the record itself, copies the header's id (to the ``key`` path) and the ``inherit``
  fields into each line.

Errors name the source, its owner, the request (method, host, path: never the query) and Xero's
own message; the tenant id and the token are never in them.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from patchbay.connectors._http import BaseUrl, JsonApi, PageGuard, quarantined
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
    invalid_block,
)
from patchbay.core.filters import Op
from patchbay.core.mapping import LINES_KEY, ROW_ERRORS_KEY

__all__ = ["XeroConnector", "XeroLines", "XeroOrigin", "XeroSettings", "where_clause"]

Row = dict[str, Any]
Scalar = str | int | float | bool

# Endpoint -> (id field, paged). The response holds the records under the endpoint's name.
ENDPOINTS: Mapping[str, tuple[str, bool]] = {
    "Contacts": ("ContactID", True),
    "Invoices": ("InvoiceID", True),
    "CreditNotes": ("CreditNoteID", True),
    "Payments": ("PaymentID", True),
    "BankTransactions": ("BankTransactionID", True),
    "PurchaseOrders": ("PurchaseOrderID", True),
    "Items": ("ItemID", False),
    "Accounts": ("AccountID", False),
}
_RESERVED = {"page", "pageSize", "where"}
_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$")
_XERO_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DERIVED = ("PhonesByType", "AddressesByType")  # added by the connector: Xero cannot filter


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class XeroSettings(_Block):
    """``tenant_id``: the Xero organisation to read, sent as ``xero-tenant-id``. Give it as a
    reference (``store:xero_tenant`` resolves per patchbay tenant, ``env:XERO_TENANT_ID``)."""

    base_url: BaseUrl = "https://api.xero.com/api.xro/2.0"
    tenant_id: str = Field(min_length=1, repr=False)
    page_cap: int = Field(default=10_000, ge=1)


class XeroOrigin(_Block):
    """An entity's ``from:`` block: ``{endpoint: Invoices, where: 'Type=="ACCREC"'}``."""

    endpoint: str
    where: str | None = None  # a fixed Xero where expression, ANDed with pushed filters
    params: dict[str, Scalar] = Field(default_factory=dict)  # includeArchived, order, ...
    page_size: int = Field(default=100, ge=1, le=1000)
    since: str = "UpdatedDateUTC"  # the path If-Modified-Since compares

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if value not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {value!r}; endpoints: {', '.join(ENDPOINTS)}")
        return value

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        clash = sorted(_RESERVED & set(value))
        if clash:
            raise ValueError(f"{', '.join(clash)}: set by the connector (use where: for a filter)")
        return value

    @property
    def id_field(self) -> str:
        return ENDPOINTS[self.endpoint][0]

    @property
    def paged(self) -> bool:
        return ENDPOINTS[self.endpoint][1]


class XeroLines(_Block):
    """A ``lines.from`` block: the list in each record holding its lines."""

    embedded: str = Field(min_length=1)
    inherit: list[str] = Field(default_factory=list)  # header fields copied into each line


# --- where expressions ------------------------------------------------------------------------


def _literal(path: str, value: Any) -> str | None:
    """``value`` as a literal of Xero's where syntax for ``path``; None if it has none."""
    if path.rsplit(".", 1)[-1].endswith("ID"):
        try:
            return f'Guid("{uuid.UUID(str(value))}")' if isinstance(value, str) else None
        except ValueError:
            return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")
    if isinstance(value, str):
        # Xero's expression parser (.NET Dynamic LINQ) reads "" inside a string as one ";
        # a backslash has no special meaning there.
        return '"' + value.replace('"', '""') + '"'
    return None


def where_clause(condition: SourceFilter) -> str | None:
    """One pushed condition as a where clause; None when it cannot be written."""
    if condition.fold or not _PATH.match(condition.path):
        return None
    if condition.path.split(".", 1)[0] in _DERIVED:
        return None
    if condition.op is Op.EQ:
        literal = _literal(condition.path, condition.value)
        return None if literal is None else f"{condition.path}=={literal}"
    if condition.op is Op.IN and isinstance(condition.value, tuple | list) and condition.value:
        literals = [_literal(condition.path, v) for v in condition.value]
        if any(item is None for item in literals):
            return None
        return "(" + " OR ".join(f"{condition.path}=={item}" for item in literals) + ")"
    return None


# --- rows -------------------------------------------------------------------------------------


def _xero_date(text: str) -> str | None:
    match = _XERO_DATE.match(text)
    if match is None:
        return None
    # The milliseconds are since the epoch in UTC; the offset only says where it was written.
    moment = _EPOCH + timedelta(milliseconds=int(match.group(1)))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        if value.startswith("/Date("):
            converted = _xero_date(value)
            return value if converted is None else converted
        return value
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _phone_text(phone: Mapping[str, Any]) -> str | None:
    parts = [str(phone.get(k) or "").strip() for k in
             ("PhoneCountryCode", "PhoneAreaCode", "PhoneNumber")]
    return " ".join(p for p in parts if p) or None


def _shape(record: Row) -> Row:
    row: Row = _clean(record)
    phones, addresses = row.get("Phones"), row.get("Addresses")
    if isinstance(phones, list):
        row["PhonesByType"] = {p["PhoneType"]: _phone_text(p) for p in phones
                               if isinstance(p, dict) and isinstance(p.get("PhoneType"), str)}
    if isinstance(addresses, list):
        row["AddressesByType"] = {
            a["AddressType"]: {k: (v if v != "" else None) for k, v in a.items()}
            for a in addresses
            if isinstance(a, dict) and isinstance(a.get("AddressType"), str)
        }
    return row


# --- the connector ----------------------------------------------------------------------------


class XeroConnector(Connector):
    """Xero Accounting API through the Hub's client (OAuth2 token, retries, rate limits)."""

    kind = "xero"
    Settings = XeroSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.READ, Capability.GET, Capability.INCREMENTAL, Capability.CHECK}
    )
    pushdown: ClassVar[frozenset[Op]] = frozenset({Op.EQ, Op.IN, Op.GTE})  # see accepts()
    resources = frozenset({"http_client"})
    origin_model = XeroOrigin

    def __init__(self, settings: XeroSettings, resources: Resources) -> None:
        super().__init__(settings, resources)
        self.options = settings
        headers = {"Accept": "application/json", "xero-tenant-id": settings.tenant_id}
        self.api = JsonApi(resources, settings.base_url, headers=headers, explain=_explain)

    # --- presets and config checks -----------------------------------------------------------

    @classmethod
    def preset_entities(cls, settings: BaseModel) -> Mapping[str, Mapping[str, Any]]:
        return PRESET

    # --- planning ----------------------------------------------------------------------------

    def accepts(self, request: ReadRequest, condition: SourceFilter) -> bool:
        origin = self._origin(request.origin, request.entity)
        if condition.op is Op.GTE:
            return (condition.path == origin.since and not condition.fold
                    and isinstance(condition.value, date))
        return where_clause(condition) is not None

    def can_order(self, request: ReadRequest, order: SourceOrder) -> bool:
        return False  # records come in Xero's order

    # --- reading -----------------------------------------------------------------------------

    async def read(self, request: ReadRequest) -> AsyncGenerator[Batch, None]:
        origin = self._origin(request.origin, request.entity)
        if request.order:
            raise self.api.error("the xero connector cannot sort; records come in Xero's order")
        lines = self._lines(request.lines)
        query, headers = self._query(origin, request.filters)
        page, skip = self._resume(request.position, origin)
        previous: list[Any] | None = None
        guard = PageGuard(self.api, cap=self.options.page_cap)
        while True:
            guard.count(origin.endpoint)
            params = dict(query)
            if origin.paged:
                params.update(page=str(page), pageSize=str(origin.page_size))
            body = await self._get(origin.endpoint, params, headers)
            rows = self._records(body, origin, lines, request.lines)
            if not rows:
                return
            ids = [row.get(origin.id_field) for row in rows]
            if ids == previous:
                raise self.api.error(
                    f"{origin.endpoint}: page {page} holds the same records as page {page - 1}; "
                    "the API seems to ignore the page parameter (stopped instead of looping)"
                )
            previous = ids
            if skip < len(rows):
                yield Batch(rows[skip:], _positions(page, skip))
            if not origin.paged or len(rows) < origin.page_size or _last_page(body, page):
                return
            page, skip = page + 1, 0

    async def get(self, request: GetRequest) -> Mapping[str, Any] | None:
        origin = self._origin(request.origin, request.entity)
        if len(request.id_values) != 1:
            return None
        wanted = request.id_values[0].strip()
        condition = SourceFilter(origin.id_field, Op.EQ, wanted)
        if where_clause(condition) is None:
            return None  # not a GUID: Xero has no such record (and would answer 400)
        lookup = ReadRequest(request.entity, request.origin, request.id_paths, request.paths,
                             filters=(condition,), lines=request.lines)
        async with contextlib.aclosing(self.read(lookup)) as batches:
            async for batch in batches:
                for row in batch.rows:
                    if str(row.get(origin.id_field, "")).lower() == wanted.lower():
                        return row
                break  # the first page holds the match, if Xero has it
        return None

    async def check(self) -> None:
        await self._get("Organisation", {}, {})

    # --- request building ------------------------------------------------------------------

    def _query(self, origin: XeroOrigin, filters: Sequence[SourceFilter]
               ) -> tuple[dict[str, str], dict[str, str]]:
        params = {name: _param_text(value) for name, value in origin.params.items()}
        headers: dict[str, str] = {}
        clauses = [f"({origin.where})"] if origin.where else []
        for condition in filters:
            if condition.op is Op.GTE and condition.path == origin.since:
                headers["If-Modified-Since"] = _since_text(condition.value)
                continue
            clause = where_clause(condition)
            if clause is None:  # the Hub only sends what accepts() took
                raise self.api.error(f"cannot push {condition.path} {condition.op} to Xero")
            clauses.append(clause)
        if clauses:
            params["where"] = clauses[0] if len(clauses) == 1 else " AND ".join(clauses)
        return params, headers

    def _resume(self, position: Position | None, origin: XeroOrigin) -> tuple[int, int]:
        if position is None:
            return 1, 0
        if isinstance(position, Mapping) and set(position) == {"page", "skip"}:
            page, skip = position["page"], position["skip"]
            valid = type(page) is int and type(skip) is int and page >= 1 and skip >= 0
            if valid and (origin.paged or page == 1):
                return page, skip
        raise self.api.error(
            f"cannot resume from position {position!r}: expected {{'page': N, 'skip': N}}"
        )

    def _lines(self, lines: LinesRequest | None) -> XeroLines | None:
        if lines is None:
            return None
        try:
            return XeroLines.model_validate(dict(lines.origin))
        except ValidationError as exc:
            raise self.api.error(f"invalid lines.from block: {invalid_block(exc)}") from None

    # --- responses ---------------------------------------------------------------------------

    def _records(self, body: Any, origin: XeroOrigin, lines: XeroLines | None,
                 request: LinesRequest | None) -> list[Row]:
        found = body.get(origin.endpoint) if isinstance(body, dict) else None
        if not isinstance(found, list):
            keys = ", ".join(sorted(body)) if isinstance(body, dict) else "not an object"
            raise self.api.error(
                f"{origin.endpoint}: the answer has no list {origin.endpoint!r} of records "
                f"(found: {keys or 'an empty object'})"
            )
        rows: list[Row] = []
        for number, item in enumerate(found, start=1):
            if not isinstance(item, dict):
                rows.append(quarantined(item, f"{origin.endpoint} record {number}"))
                continue
            row = _shape(item)
            if lines is not None and request is not None:
                row[LINES_KEY] = self._line_rows(row, lines, request, origin)
            rows.append(row)
        return rows

    def _line_rows(self, row: Row, lines: XeroLines, request: LinesRequest,
                   origin: XeroOrigin) -> list[Row]:
        embedded = row.get(lines.embedded)
        if embedded is None:
            return []
        if not isinstance(embedded, list):
            row.setdefault(ROW_ERRORS_KEY, []).append(
                f"{lines.embedded}: a JSON {type(embedded).__name__}, not a list of lines")
            return []
        inherited = {name: row.get(name) for name in lines.inherit}
        header_id = row.get(origin.id_field)
        out = []
        for line in embedded:
            if not isinstance(line, dict):
                continue
            merged = {**inherited, **line}
            for key in request.key:
                merged.setdefault(key, header_id)
            out.append(merged)
        return out

    # --- HTTP --------------------------------------------------------------------------------

    async def _get(self, endpoint: str, params: Mapping[str, str],
                   headers: Mapping[str, str]) -> Any:
        return await self.api.get_json(self.api.url(endpoint), params, headers=headers,
                                       where=endpoint)

    # --- plumbing ----------------------------------------------------------------------------

    def _origin(self, origin: Mapping[str, Any], entity: str) -> XeroOrigin:
        try:
            return XeroOrigin.model_validate(dict(origin))
        except ValidationError as exc:
            raise self.api.error(f"entities.{entity}.from: {invalid_block(exc)}") from None


# --- helpers ---------------------------------------------------------------------------------


def _positions(page: int, skip: int) -> Callable[[int], Position]:
    def position_after(index: int) -> dict[str, int]:
        return {"page": page, "skip": skip + index + 1}

    return position_after


def _last_page(body: Any, page: int) -> bool:
    pagination = body.get("pagination") if isinstance(body, dict) else None
    count = pagination.get("pageCount") if isinstance(pagination, dict) else None
    return type(count) is int and page >= count


def _param_text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _since_text(value: Any) -> str:
    moment = value if isinstance(value, datetime) else datetime(value.year, value.month,
                                                                 value.day)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # whole seconds, rounded down: a superset


def _explain(status: int, body: Any) -> str:
    """What Xero said about a refused request, and what to check after a 401 or 403."""
    said = _xero_message(body)
    message = f": Xero says {said!r}" if said else ""
    if status in (401, 403):
        message += ("; check the auth token and that tenant_id names an organisation this "
                    "connection may read")
    return message


def _xero_message(body: Any) -> str | None:
    """Xero's own explanation (``Message``, or the first validation error), if it gave one."""
    if not isinstance(body, dict):
        return None
    for key in ("Message", "Detail", "detail", "title"):
        if isinstance(body.get(key), str) and body[key].strip():
            return str(body[key]).strip()[:300]
    return None




# --- the preset -------------------------------------------------------------------------------

_CONTACT_STATUS = {"ACTIVE": "active", "ARCHIVED": "inactive", "GDPRREQUEST": "inactive",
                   "*": "other"}
_INVOICE_STATUS = {"DRAFT": "draft", "SUBMITTED": "draft", "AUTHORISED": "open", "PAID": "paid",
                   "VOIDED": "void", "DELETED": "void", "*": "other"}


def _address(prefix: str) -> dict[str, Any]:
    return {
        "address.line1": f"{prefix}.AddressLine1",
        "address.line2": f"{prefix}.AddressLine2",
        "address.city": f"{prefix}.City",
        "address.region": f"{prefix}.Region",
        "address.postal_code": f"{prefix}.PostalCode",
        "address.country": {"path": f"{prefix}.Country", "transform": "country"},
    }


# Xero contacts are organisations or people. ``company`` reads every contact as the
# organisation; ``contact`` reads the same records as their primary person (FirstName, LastName,
# EmailAddress), linked to the company of the same id. Extra ContactPersons are not read.
PRESET: Mapping[str, Mapping[str, Any]] = {
    "company": {
        "from": {"endpoint": "Contacts"},
        "id": "ContactID",
        "updated_at": "UpdatedDateUTC",
        "fields": {
            "name": "Name",
            "extra.company_number": "CompanyNumber",
            "tax_id": "TaxNumber",
            "website": "Website",
            "email": {"path": "EmailAddress", "transform": "email"},
            "phone": {"path": "PhonesByType.DEFAULT", "transform": "phone"},
            "status": {"path": "ContactStatus", "transform": {"map": _CONTACT_STATUS}},
            **_address("AddressesByType.POBOX"),
        },
    },
    "contact": {
        "from": {"endpoint": "Contacts"},
        "id": "ContactID",
        "updated_at": "UpdatedDateUTC",
        "fields": {
            "first_name": "FirstName",
            "last_name": "LastName",
            "email": {"path": "EmailAddress", "transform": "email"},
            "phone": {"path": "PhonesByType.DEFAULT", "transform": "phone"},
            "mobile": {"path": "PhonesByType.MOBILE", "transform": "phone"},
            "company_id": {"path": "ContactID", "transform": "ref"},
            "company_name": "Name",
            "status": {"path": "ContactStatus", "transform": "lower"},
            **_address("AddressesByType.POBOX"),
        },
    },
    "invoice": {
        "from": {"endpoint": "Invoices", "where": 'Type=="ACCREC"'},
        "id": "InvoiceID",
        "updated_at": "UpdatedDateUTC",
        "fields": {
            "number": "InvoiceNumber",
            "customer_id": {"path": "Contact.ContactID", "transform": "ref"},
            "status": {"path": "Status", "transform": {"map": _INVOICE_STATUS}},
            "issued_on": {"path": "Date", "transform": "date"},
            "due_on": {"path": "DueDate", "transform": "date"},
            "total": {"path": ["Total", "CurrencyCode"], "transform": "money"},
            "balance": {"path": ["AmountDue", "CurrencyCode"], "transform": "money"},
        },
        "lines": {
            "from": {"embedded": "LineItems", "inherit": ["CurrencyCode"]},
            "key": "InvoiceID",
            "fields": {
                "product_id": {"path": "Item.ItemID", "transform": "ref"},
                "sku": "ItemCode",
                "description": "Description",
                "quantity": {"path": "Quantity", "transform": "decimal"},
                "unit_price": {"path": ["UnitAmount", "CurrencyCode"], "transform": "money"},
                "total": {"path": ["LineAmount", "CurrencyCode"], "transform": "money"},
            },
        },
    },
    "product": {
        "from": {"endpoint": "Items"},
        "id": "ItemID",
        "updated_at": "UpdatedDateUTC",
        "fields": {
            "sku": "Code",
            "name": "Name",
            "description": "Description",
            # Items carry no currency: set the source's defaults.currency to the
            # organisation's base currency, or the price is left empty (and counted).
            "unit_price": {"path": "SalesDetails.UnitPrice", "transform": "money"},
            "active": {"path": "IsSold", "transform": "bool"},
        },
    },
}
