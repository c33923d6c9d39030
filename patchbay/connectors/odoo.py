"""The ``odoo`` connector: Odoo's external JSON-RPC API (``/jsonrpc``, ``execute_kw``).

One POST per call: ``{"service": "object", "method": "execute_kw", "args": [db, uid, password,
model, "search_read", [domain], {fields, limit, order}]}``; ``uid`` comes once from
``common.login`` (database, login and password or API key, all from the source's settings,
resolved from ``env:``/``store:`` references). Odoo answers failures as HTTP 200 with an
``error`` body: they become errors naming the source, the model and Odoo's own message (never
its traceback, never the password).

* Reading: ``search_read`` ordered by ``write_date, id``, ``limit`` rows at a time, resumed by
  keyset: a position is the ``(write_date, id)`` of the last row read, and the next call adds
  ``write_date > w OR (write_date = w AND id > i)`` to the domain, so records written while a
  read runs cannot shift the pages under it.
* Push-down: ``eq``, ``ne``, ``in``, ``contains`` (``ilike``, case-insensitive: a superset the
  Hub re-checks) on text; ordered comparisons only on numbers and dates; ``since`` as
  ``write_date >= t``. Domains are JSON lists built from values, never code built from text.
* Rows: a many2one ``[id, "name"]`` becomes ``{"id": id, "name": "name"}`` (map ``partner_id.id``
  and ``partner_id.name``), and Odoo's ``false`` for an empty non-boolean field becomes null. The
  field types come from one ``fields_get`` per model, which is also where a mapped field the model
  does not have is reported, before any record is read.
* Lines: ``lines.from: {model: sale.order.line}`` with ``key: order_id`` reads the lines of a whole
  batch of headers in one more ``search_read`` (``key in [ids]``), with the lines' own ``domain``.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from patchbay.connectors._http import BaseUrl, JsonApi, PageGuard
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
from patchbay.core.mapping import LINES_KEY

__all__ = ["OdooConnector", "OdooLines", "OdooOrigin", "OdooSettings", "domain_term"]

Row = dict[str, Any]
Domain = list[Any]
_ORDERED = {Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}
_OPERATORS = {"=", "!=", ">", ">=", "<", "<=", "in", "not in", "like", "ilike", "not like",
              "not ilike", "=like", "=ilike", "child_of", "parent_of"}
_ODOO_DATETIME = "%Y-%m-%d %H:%M:%S"


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_domain(value: list[Any]) -> list[Any]:
    """A domain in Odoo's prefix notation: ``"&"``, ``"|"``, ``"!"`` and ``[field, op, value]``."""
    for item in value:
        if item in ("&", "|", "!"):
            continue
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                and item[1] in _OPERATORS):
            raise ValueError(
                f"{item!r} is not a domain term: use [field, operator, value] (operators: "
                f"{', '.join(sorted(_OPERATORS))}) or '&', '|', '!'"
            )
    _normalize(value)
    return value


class OdooSettings(_Block):
    """``url`` (the Odoo server, ``/jsonrpc`` is added), ``database``, ``login`` and ``password``
    (a user's password or, better, an API key: give it as ``env:``/``store:``)."""

    url: BaseUrl
    database: str = Field(min_length=1)
    login: str = Field(min_length=1)
    password: SecretStr
    page_size: int = Field(default=200, ge=1, le=10_000)
    page_cap: int = Field(default=100_000, ge=1)


class OdooOrigin(_Block):
    """An entity's ``from:`` block: ``{model: res.partner, domain: [[is_company, =, true]]}``."""

    model: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
    domain: list[Any] = Field(default_factory=list)
    context: dict[str, Any] = Field(default_factory=dict)  # lang, active_test, ...

    _domain = field_validator("domain")(_check_domain)


class OdooLines(_Block):
    """A ``lines.from`` block: the line model, and a domain of its own."""

    model: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
    domain: list[Any] = Field(default_factory=list)

    _domain = field_validator("domain")(_check_domain)


# --- domains ----------------------------------------------------------------------------------


def _field(path: str) -> str | None:
    """The Odoo field a mapped path compares: ``name``, or ``partner_id`` for ``partner_id.id``."""
    head, _, rest = path.partition(".")
    if not head or rest not in ("", "id"):
        return None
    return head


def _value(value: Any) -> Any:
    """A filter value as the JSON value Odoo compares; None when it has none."""
    if isinstance(value, int | float | str):  # bool is an int
        return value
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
        return moment.strftime(_ODOO_DATETIME)  # Odoo keeps datetimes in UTC
    if isinstance(value, date):
        return value.isoformat()
    return None


def domain_term(condition: SourceFilter) -> list[Any] | None:
    """One pushed condition as a domain (a list of terms); None when Odoo cannot evaluate it."""
    name = _field(condition.path)
    if name is None:
        return None
    op, value = condition.op, condition.value
    if name == "id" or name != condition.path:
        # An id or a many2one's id: Odoo reads text there as a name to search, so only
        # integers (the Hub hands remote keys over as text) are pushed.
        ids = _ids(value if op is Op.IN else (value,))
        if ids is None or op not in (Op.EQ, Op.NE, Op.IN) or condition.fold:
            return None
        if op is Op.IN:
            return [[name, "in", ids]] if ids else None
        return [[name, "=" if op is Op.EQ else "!=", ids[0]]]
    if op is Op.CONTAINS:
        text = _value(value)
        return [[name, "ilike", text]] if isinstance(text, str) else None
    if condition.fold:
        return None
    if op is Op.ISNULL and value is False:
        return [[name, "!=", False]]
    if op in (Op.EQ, Op.NE):
        literal = _value(value)
        if literal is None:
            return None
        return [[name, "=" if op is Op.EQ else "!=", literal]]
    if op is Op.IN and isinstance(value, tuple | list) and value:
        literals = [_value(v) for v in value]
        if any(v is None for v in literals):
            return None
        return [[name, "in", literals]]
    if op in _ORDERED:
        # Text order is the database collation's, not Python's: only numbers and dates.
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | date):
            return None
        return [[name, _ORDERED[op], _value(value)]]
    return None


def _normalize(domain: Sequence[Any]) -> Domain:
    """One expression in prefix notation: the implicit ANDs between top-level terms made
    explicit (Odoo reads ``[A, B]`` as ``["&", A, B]``). Raises ValueError when unbalanced."""
    out: Domain = []
    expected = 1  # expressions still to read
    for item in domain:
        if expected == 0:
            out.insert(0, "&")
            expected = 1
        out.append(item)
        if item in ("&", "|"):
            expected += 1
        elif item != "!":
            expected -= 1
    if out and expected != 0:
        raise ValueError("the domain is incomplete: an operator lacks its terms")
    return out


def _ids(values: Any) -> list[int] | None:
    out = []
    for value in values if isinstance(values, tuple | list) else ():
        if isinstance(value, int) and not isinstance(value, bool):
            out.append(value)
        elif isinstance(value, str) and value.strip().isdigit():
            out.append(int(value.strip()))
        else:
            return None
    return out


def _and(*domains: Sequence[Any]) -> Domain:
    """The conjunction of domains, as one domain."""
    parts = [_normalize(d) for d in domains if d]
    out: Domain = ["&"] * (len(parts) - 1)
    for part in parts:
        out.extend(part)
    return out


# --- the connector ----------------------------------------------------------------------------


class OdooConnector(Connector):
    """Odoo over JSON-RPC through the Hub's client (timeouts, retries, rate limits, breaker)."""

    kind = "odoo"
    Settings = OdooSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.READ, Capability.GET, Capability.INCREMENTAL, Capability.CHECK}
    )
    pushdown: ClassVar[frozenset[Op]] = frozenset(
        {Op.EQ, Op.NE, Op.IN, Op.CONTAINS, Op.GT, Op.GTE, Op.LT, Op.LTE, Op.ISNULL}
    )
    resources = frozenset({"http_client"})
    origin_model = OdooOrigin

    def __init__(self, settings: OdooSettings, resources: Resources) -> None:
        super().__init__(settings, resources)
        self.options = settings
        self.api = JsonApi(resources, settings.url, setting="url")
        self._uid: int | None = None
        self._types: dict[str, dict[str, str]] = {}  # model -> field -> Odoo type
        self._ids = itertools.count(1)

    # --- presets and config checks -----------------------------------------------------------

    @classmethod
    def preset_entities(cls, settings: BaseModel) -> Mapping[str, Mapping[str, Any]]:
        return PRESET

    # --- planning ----------------------------------------------------------------------------

    def accepts(self, request: ReadRequest, condition: SourceFilter) -> bool:
        return domain_term(condition) is not None

    def can_order(self, request: ReadRequest, order: SourceOrder) -> bool:
        return False  # keyset paging needs write_date, id order

    # --- reading -----------------------------------------------------------------------------

    async def read(self, request: ReadRequest) -> AsyncGenerator[Batch, None]:
        origin = self._origin(request.origin, request.entity)
        if request.order:
            raise self.api.error("the odoo connector cannot sort; records come by write_date, id")
        lines = self._lines(request.lines)
        fields = await self._fields(origin.model, request.paths, request.id_paths)
        domain = _and(origin.domain, *(self._term(c) for c in request.filters))
        after: tuple[Any, Any] | None = self._resume(request.position)
        size = min(self.options.page_size, max(request.batch_size, 1))
        guard = PageGuard(self.api, cap=self.options.page_cap)
        while True:
            guard.count(origin.model)
            keyset: Domain = [] if after is None else [
                "|", ["write_date", ">", after[0]],
                "&", ["write_date", "=", after[0]], ["id", ">", after[1]]]
            rows = await self._search_read(origin.model, _and(domain, keyset), fields,
                                           limit=size, order="write_date asc, id asc",
                                           context=origin.context)
            if not rows:
                return
            if lines is not None and request.lines is not None:
                await self._attach_lines(rows, lines, request.lines)
            last = (rows[-1].get("write_date"), rows[-1].get("id"))
            if after is not None and list(last) == list(after):
                raise self.api.error(f"{origin.model}: the read did not advance past {after!r}")
            yield Batch(rows, _positions(rows))
            if len(rows) < size:
                return
            after = last

    async def get(self, request: GetRequest) -> Mapping[str, Any] | None:
        origin = self._origin(request.origin, request.entity)
        if len(request.id_values) != 1 or not request.id_values[0].strip().isdigit():
            return None  # Odoo ids are integers
        ident = int(request.id_values[0].strip())
        fields = await self._fields(origin.model, request.paths, request.id_paths)
        rows = await self._search_read(origin.model, _and(origin.domain, [["id", "=", ident]]),
                                       fields, limit=1, order="id asc", context=origin.context)
        lines = self._lines(request.lines)
        if rows and lines is not None and request.lines is not None:
            await self._attach_lines(rows, lines, request.lines)
        return rows[0] if rows else None

    async def check(self) -> None:
        self._uid = None
        await self._login()

    # --- Odoo calls --------------------------------------------------------------------------

    async def _login(self) -> int:
        if self._uid is None:
            o = self.options
            uid = await self._call("common", "login",
                                   [o.database, o.login, o.password.get_secret_value()],
                                   what="common.login")
            if not isinstance(uid, int) or isinstance(uid, bool):
                raise self.api.error(
                    f"Odoo refused the login of {o.login!r} on database {o.database!r}: check "
                    "settings.login and settings.password (a password or an API key)"
                )
            self._uid = uid
        return self._uid

    async def _execute(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any]
                       ) -> Any:
        uid = await self._login()
        o = self.options
        return await self._call(
            "object", "execute_kw",
            [o.database, uid, o.password.get_secret_value(), model, method, args, kwargs],
            what=f"{model} {method}")

    async def _search_read(self, model: str, domain: Domain, fields: list[str], *,
                           limit: int | None, order: str, context: Mapping[str, Any]
                           ) -> list[Row]:
        kwargs: dict[str, Any] = {"fields": fields, "order": order}
        if limit is not None:
            kwargs["limit"] = limit
        if context:
            kwargs["context"] = dict(context)
        found = await self._execute(model, "search_read", [domain], kwargs)
        if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
            raise self.api.error(f"{model} search_read: the result is not a list of records")
        types = self._types.get(model, {})
        return [_shape(row, types) for row in found]

    async def _fields(self, model: str, paths: Sequence[str], id_paths: Sequence[str]
                      ) -> list[str]:
        """The Odoo fields to read; a mapped field the model lacks is an error naming both."""
        if model not in self._types:
            described = await self._execute(model, "fields_get", [], {"attributes": ["type"]})
            if not isinstance(described, dict):
                raise self.api.error(f"{model} fields_get: the result is not an object")
            self._types[model] = {name: str(info.get("type")) for name, info in described.items()
                                  if isinstance(info, dict)}
        known = self._types[model]
        wanted = ["id", "write_date"]
        for path in (*id_paths, *paths):
            name = path.split(".", 1)[0]
            if name not in wanted:
                wanted.append(name)
        missing = [name for name in wanted if name not in known]
        if missing:
            raise self.api.error(
                f"{model} has no field {', '.join(map(repr, missing))}: fix the mapping (or "
                "install the Odoo module that adds it)"
            )
        return wanted

    async def _attach_lines(self, rows: list[Row], lines: OdooLines, request: LinesRequest
                            ) -> None:
        if len(request.key) != 1:
            raise self.api.error("odoo lines need one key field (the line's many2one to its "
                                 "header)")
        key = request.key[0].split(".", 1)[0]
        fields = await self._fields(lines.model, request.paths, (key,))
        ids = [row["id"] for row in rows]
        order = ", ".join(f"{p} asc" for p in request.order_by) or f"{key} asc, id asc"
        found = await self._search_read(lines.model, _and(lines.domain, [[key, "in", ids]]),
                                        fields, limit=None, order=order, context={})
        by_header: dict[Any, list[Row]] = {ident: [] for ident in ids}
        for line in found:
            owner = line.get(key)
            owner_id = owner.get("id") if isinstance(owner, dict) else owner
            if owner_id in by_header:
                by_header[owner_id].append(line)
        for row in rows:
            row[LINES_KEY] = by_header[row["id"]]

    async def _call(self, service: str, method: str, args: list[Any], *, what: str) -> Any:
        payload = {"jsonrpc": "2.0", "method": "call", "id": next(self._ids),
                   "params": {"service": service, "method": method, "args": args}}
        body = await self.api.post_json(self.api.url("jsonrpc"), payload, where=what)
        if not isinstance(body, dict):
            raise self.api.error(f"{what}: the answer is not a JSON-RPC object")
        if "error" in body:
            raise self.api.error(f"{what}: Odoo answered an error: {self._odoo_message(body)}")
        if "result" not in body:
            raise self.api.error(f"{what}: the JSON-RPC answer has neither result nor error")
        return body["result"]

    def _odoo_message(self, body: Mapping[str, Any]) -> str:
        """Odoo's exception name and message; never its traceback (``debug``) or arguments."""
        error = body.get("error")
        if not isinstance(error, dict):
            return repr(error)[:200]
        data: dict[str, Any] = error["data"] if isinstance(error.get("data"), dict) else {}
        name = str(data.get("name") or "").rsplit(".", 1)[-1]
        message = str(data.get("message") or error.get("message") or "no message")
        secret = self.options.password.get_secret_value()
        if secret:
            message = message.replace(secret, "***")
        return f"{name}: {message[:500]}" if name else message[:500]

    # --- plumbing ----------------------------------------------------------------------------

    def _term(self, condition: SourceFilter) -> Domain:
        term = domain_term(condition)
        if term is None:  # the Hub only sends what accepts() took
            raise self.api.error(f"cannot push {condition.path} {condition.op} to Odoo")
        return term

    def _resume(self, position: Position | None) -> tuple[Any, int] | None:
        if position is None:
            return None
        if isinstance(position, Mapping) and set(position) == {"after"}:
            after = position["after"]
            if (isinstance(after, list) and len(after) == 2 and isinstance(after[0], str)
                    and type(after[1]) is int):
                return after[0], after[1]
        raise self.api.error(
            f"cannot resume from position {position!r}: expected {{'after': [WRITE_DATE, ID]}}"
        )

    def _origin(self, origin: Mapping[str, Any], entity: str) -> OdooOrigin:
        try:
            return OdooOrigin.model_validate(dict(origin))
        except ValidationError as exc:
            raise self.api.error(f"entities.{entity}.from: {invalid_block(exc)}") from None

    def _lines(self, lines: LinesRequest | None) -> OdooLines | None:
        if lines is None:
            return None
        try:
            return OdooLines.model_validate(dict(lines.origin))
        except ValidationError as exc:
            raise self.api.error(f"invalid lines.from block: {invalid_block(exc)}") from None


# --- helpers ---------------------------------------------------------------------------------


def _shape(row: Row, types: Mapping[str, str]) -> Row:
    out: Row = {}
    for name, value in row.items():
        kind = types.get(name)
        if kind == "many2one":
            if isinstance(value, list) and len(value) == 2:
                value = {"id": value[0], "name": value[1]}
            elif value is False:
                value = None
        elif value is False and kind not in ("boolean", None):
            value = None  # Odoo writes an empty field as false
        out[name] = value
    return out


def _positions(rows: Sequence[Row]) -> Callable[[int], Position]:
    def position_after(index: int) -> dict[str, Any]:
        row = rows[index]
        return {"after": [row.get("write_date"), row.get("id")]}

    return position_after




# --- the preset -------------------------------------------------------------------------------


def _address() -> dict[str, Any]:
    return {
        "address.line1": "street",
        "address.line2": "street2",
        "address.city": "city",
        "address.region": "state_id.name",
        "address.postal_code": "zip",
        "address.country": {"path": "country_id.name", "transform": "country"},
    }


_MONEY = "money"
PRESET: Mapping[str, Mapping[str, Any]] = {
    "company": {
        "from": {"model": "res.partner", "domain": [["is_company", "=", True]]},
        "id": "id",
        "updated_at": "write_date",
        "fields": {
            "name": "name",
            "tax_id": "vat",
            "website": "website",
            "email": {"path": "email", "transform": "email"},
            "phone": {"path": "phone", "transform": "phone"},
            "industry": "industry_id.name",
            "status": {"path": "active", "transform": {"map": {"true": "active",
                                                                "false": "inactive"}}},
            **_address(),
        },
    },
    "contact": {
        "from": {"model": "res.partner", "domain": [["is_company", "=", False]]},
        "id": "id",
        "updated_at": "write_date",
        "fields": {
            "full_name": "name",
            "email": {"path": "email", "transform": "email"},
            "phone": {"path": "phone", "transform": "phone"},
            "mobile": {"path": "mobile", "transform": "phone"},
            "title": "function",
            "company_id": {"path": "parent_id.id", "transform": "ref"},
            "company_name": "parent_id.name",
            **_address(),
        },
    },
    "order": {
        "from": {"model": "sale.order"},
        "id": "id",
        "updated_at": "write_date",
        "fields": {
            "number": "name",
            "customer_id": {"path": "partner_id.id", "transform": "ref"},
            "status": {"path": "state", "transform": {"map": {
                "draft": "draft", "sent": "draft", "sale": "confirmed", "done": "fulfilled",
                "cancel": "cancelled", "*": "other"}}},
            "ordered_at": {"path": "date_order", "transform": "date"},
            "total": {"path": ["amount_total", "currency_id.name"], "transform": _MONEY},
        },
        "lines": {
            "from": {"model": "sale.order.line", "domain": [["display_type", "=", False]]},
            "key": "order_id",
            "order_by": ["order_id", "sequence", "id"],
            "fields": {
                "product_id": {"path": "product_id.id", "transform": "ref"},
                "description": "name",
                "quantity": {"path": "product_uom_qty", "transform": "decimal"},
                "unit_price": {"path": ["price_unit", "currency_id.name"], "transform": _MONEY},
                "total": {"path": ["price_subtotal", "currency_id.name"], "transform": _MONEY},
            },
        },
    },
    "invoice": {
        "from": {"model": "account.move",
                 "domain": [["move_type", "=", "out_invoice"], ["state", "=", "posted"]]},
        "id": "id",
        "updated_at": "write_date",
        "fields": {
            "number": "name",
            "customer_id": {"path": "partner_id.id", "transform": "ref"},
            "status": {"path": "payment_state", "transform": {"map": {
                "not_paid": "open", "partial": "open", "in_payment": "paid", "paid": "paid",
                "reversed": "void", "*": "other"}}},
            "issued_on": {"path": "invoice_date", "transform": "date"},
            "due_on": {"path": "invoice_date_due", "transform": "date"},
            "total": {"path": ["amount_total", "currency_id.name"], "transform": _MONEY},
            "balance": {"path": ["amount_residual", "currency_id.name"], "transform": _MONEY},
        },
        "lines": {
            "from": {"model": "account.move.line", "domain": [["display_type", "=", "product"]]},
            "key": "move_id",
            "order_by": ["move_id", "sequence", "id"],
            "fields": {
                "product_id": {"path": "product_id.id", "transform": "ref"},
                "description": "name",
                "quantity": {"path": "quantity", "transform": "decimal"},
                "unit_price": {"path": ["price_unit", "currency_id.name"], "transform": _MONEY},
                "total": {"path": ["price_subtotal", "currency_id.name"], "transform": _MONEY},
            },
        },
    },
    "product": {
        "from": {"model": "product.product"},
        "id": "id",
        "updated_at": "write_date",
        "fields": {
            "sku": "default_code",
            "name": "name",
            "description": "description_sale",
            "unit_price": {"path": ["list_price", "currency_id.name"], "transform": _MONEY},
            "active": {"path": "active", "transform": "bool"},
        },
    },
}
