"""OData literals and ``$filter`` expressions, written per protocol version.

A value becomes a literal by the property's declared Edm type when there is one (``types:`` in
the ``from:`` block), else by its Python type. The two versions differ:

===================  ===============================  =========================================
value                v4                               v2
===================  ===============================  =========================================
text                 ``'O''Brien'``                   ``'O''Brien'``
guid                 ``0f8fad5b-…`` (bare)            ``guid'0f8fad5b-…'``
timestamp (UTC)      ``2024-01-01T00:00:00Z``         ``datetimeoffset'…Z'`` or ``datetime'…'``
date                 ``2024-01-01``                   ``datetime'2024-01-01T00:00:00'``
decimal              ``12.50``                        ``12.50M``
boolean, null        ``true`` ``null``                ``true`` ``null``
===================  ===============================  =========================================

``literal`` returns ``None`` for a value that has no literal of that type (a text that is not a
guid, a time of day on a date property): such a condition stays in memory, and a key that
cannot be written names no record. Values are never pasted into a filter any other way.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from patchbay.core.connector import SourceFilter
from patchbay.core.filters import Op

__all__ = [
    "can_filter",
    "filter_expression",
    "key_predicate",
    "literal",
    "odata_dates",
    "property_path",
]

_INTEGERS = {"Edm.Byte", "Edm.SByte", "Edm.Int16", "Edm.Int32", "Edm.Int64"}
_NUMBERS = _INTEGERS | {"Edm.Decimal", "Edm.Double", "Edm.Single"}
_V2_SUFFIX = {"Edm.Decimal": "M", "Edm.Double": "d", "Edm.Single": "f", "Edm.Int64": "L"}
_COMPARE = {Op.EQ: "eq", Op.NE: "ne", Op.GT: "gt", Op.GTE: "ge", Op.LT: "lt", Op.LTE: "le"}
_TEXT = (None, "Edm.String")


def property_path(path: str) -> str:
    """A mapping path (``address.city``) as an OData property path (``address/city``)."""
    return path.replace(".", "/")


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _stamp(moment: datetime) -> str:
    """UTC wall time without an offset: the caller adds ``Z`` or writes a v2 datetime."""
    return _utc(moment).replace(tzinfo=None).isoformat()


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _numeric(value: Any, edm: str | None, version: str) -> str | None:
    number = _number(value)
    if number is None:
        return None
    integral = number == number.to_integral_value()
    # Untyped whole numbers are written as integers: every service promotes an integer
    # literal to the property's numeric type, while 5M against an Edm.Int32 may be refused.
    if edm in _INTEGERS or (edm is None and integral):
        if not integral:
            return None
        text = str(int(number))
        return text + ("L" if version == "2" and edm == "Edm.Int64" else "")
    text = format(number, "f")
    if version == "2":
        return text + _V2_SUFFIX.get(edm or "Edm.Decimal", "")
    return text


def _temporal(value: Any, edm: str | None, version: str) -> str | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        moment = _utc(value)
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        return None
    if edm == "Edm.Date" or (edm is None and version == "4" and not isinstance(value, datetime)):
        if moment.time() != datetime.min.time():
            return None  # a date property cannot be compared with a time of day
        return moment.date().isoformat() if version == "4" else f"datetime'{_stamp(moment)}'"
    if version == "4":
        return _stamp(moment) + "Z"
    if edm == "Edm.DateTimeOffset":
        return f"datetimeoffset'{_stamp(moment)}Z'"
    return f"datetime'{_stamp(moment)}'"


def literal(value: Any, edm: str | None, version: str) -> str | None:
    """``value`` as a literal of Edm type ``edm`` (None: by its Python type), or None."""
    if value is None:
        return "null"
    if edm == "Edm.Guid":
        try:
            text = str(uuid.UUID(str(value).strip()))
        except ValueError:
            return None
        return text if version == "4" else f"guid'{text}'"
    if edm == "Edm.Boolean" or (edm is None and isinstance(value, bool)):
        if isinstance(value, bool):
            return "true" if value else "false"
        text = str(value).strip().lower()
        return text if text in ("true", "false") else None
    if edm in _NUMBERS:
        return _numeric(value, edm, version)
    if edm in ("Edm.Date", "Edm.DateTime", "Edm.DateTimeOffset"):
        return _temporal(value, edm, version)
    if edm in ("Edm.TimeOfDay", "Edm.Time"):
        return None
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, datetime | date):
        return _temporal(value, None, version) if edm is None else None
    if isinstance(value, int | float | Decimal) and edm is None:
        return _numeric(value, None, version)
    return None


def _condition(condition: SourceFilter, types: Mapping[str, str], version: str,
               fold: str | None) -> str | None:
    edm = types.get(condition.path)
    prop = property_path(condition.path)
    op, value = condition.op, condition.value
    if op is Op.CONTAINS:
        if edm not in _TEXT or not isinstance(value, str) or (condition.fold and fold is None):
            return None
        target = f"{fold}({prop})" if condition.fold else prop
        needle = _text(value.lower() if condition.fold else value)
        if version == "4":
            return f"contains({target},{needle})"
        return f"substringof({needle},{target})"
    if condition.fold:
        return None
    if op is Op.ISNULL:
        return f"{prop} ne null" if value is False else None
    if op is Op.IN:
        if not isinstance(value, Sequence) or isinstance(value, str) or not value:
            return None
        parts = [literal(v, edm, version) for v in value]
        if any(p is None or p == "null" for p in parts):
            return None
        return "(" + " or ".join(f"{prop} eq {p}" for p in parts) + ")"
    if op in _COMPARE:
        text = literal(value, edm, version)
        if text is None or (text == "null" and op not in (Op.EQ, Op.NE)):
            return None
        return f"{prop} {_COMPARE[op]} {text}"
    return None


def filter_expression(
    conditions: Sequence[SourceFilter],
    fixed: Mapping[str, Any],
    types: Mapping[str, str],
    version: str,
    fold: str | None,
) -> str | None:
    """The ``$filter`` of fixed equalities and pushed conditions joined with ``and``.

    Raises ``ValueError`` naming a condition that has no OData form (``accepts`` said no).
    """
    parts: list[str] = []
    for name, value in fixed.items():
        text = literal(value, types.get(name), version)
        if text is None:
            raise ValueError(f"from.where.{name}: {value!r} is not a {types.get(name)} literal")
        parts.append(f"{property_path(name)} eq {text}")
    for condition in conditions:
        text = _condition(condition, types, version, fold)
        if text is None:
            raise ValueError(f"cannot write {condition.path} {condition.op} as an OData filter")
        parts.append(text)
    return " and ".join(parts) or None


def can_filter(condition: SourceFilter, types: Mapping[str, str], version: str,
               fold: str | None) -> bool:
    return _condition(condition, types, version, fold) is not None


def key_predicate(names: Sequence[str], values: Sequence[str], types: Mapping[str, str],
                  version: str) -> str | None:
    """``('x')``, ``(0f8f…)`` or ``(SalesOrder='1',SalesOrderItem='10')``; None if unwritable."""
    parts = []
    for name, value in zip(names, values, strict=True):
        edm = types.get(name)
        text = literal(value, edm, version) if edm is not None else _text(value)
        if text is None or text == "null":
            return None
        parts.append(text)
    if len(parts) == 1:
        return f"({parts[0]})"
    return "(" + ",".join(f"{n}={p}" for n, p in zip(names, parts, strict=True)) + ")"


_JSON_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def _json_date(text: str) -> str | None:
    """``/Date(1704412800000)/`` (v2 JSON) as ISO 8601; ``+0060`` offsets are minutes."""
    found = _JSON_DATE.match(text)
    if found is None:
        return None
    millis, offset = int(found.group(1)), found.group(2)
    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    except OverflowError:
        return None
    if offset is None:
        return moment.isoformat().replace("+00:00", "Z")
    minutes = int(offset[1:]) * (1 if offset[0] == "+" else -1)
    return moment.astimezone(timezone(timedelta(minutes=minutes))).isoformat()


def odata_dates(row: dict[str, Any]) -> None:
    """Rewrite v2 JSON dates in ``row`` (and nested objects) as ISO 8601 text, in place.

    Mapping then reads them with the usual ``date``/``datetime`` handling; nothing is lost,
    the instant is the same.
    """
    for key, value in row.items():
        if isinstance(value, str):
            if value.startswith("/Date("):
                converted = _json_date(value)
                if converted is not None:
                    row[key] = converted
        elif isinstance(value, dict):
            odata_dates(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    odata_dates(item)
