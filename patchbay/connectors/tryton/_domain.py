"""Filters as Tryton domain clauses, and the keyset clause that resumes a read.

A clause goes to Tryton only when Tryton answers as Python would on the same values, or finds
more (the Hub re-checks every record in memory): the value must have the field's type
(``"15"`` for a Many2One is the id 15; ``"abc"`` is not sent), text is never compared by order
(a database collation is not code point order), and ``contains`` becomes ``ilike`` with the
wildcards of the value escaped. Anything else is left to the Hub, never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from patchbay.connectors.sql import CASEFOLD_TO_ASCII
from patchbay.core.connector import SourceFilter
from patchbay.core.filters import Op

__all__ = ["EMULATED", "MODIFIED", "PUSHED_OPS", "SORTABLE", "after", "clause", "comes_after",
           "like_pattern", "modified_clause"]

MODIFIED = "last_modified_at"  # Tryton's COALESCE(write_date, create_date)
# Marks the stand-in for ``last_modified_at`` on a server whose models lack it.
EMULATED = "patchbay_emulated"

PUSHED_OPS = frozenset({Op.EQ, Op.NE, Op.GT, Op.GTE, Op.LT, Op.LTE, Op.IN, Op.CONTAINS,
                        Op.ISNULL})
_COMPARE = {Op.EQ: "=", Op.NE: "!=", Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}
_TEXT = frozenset({"char", "text", "selection"})
_IDS = frozenset({"integer", "many2one", "one2many", "many2many"})
# ASCII characters some non-ASCII character case-folds into (ß -> ss, ﬁ -> fi, K -> k): a needle
# holding one may match such a character, which SQL's case-insensitive LIKE does not fold.
_FOLDED_INTO = frozenset(c for _, fold in CASEFOLD_TO_ASCII for c in fold if c.isascii())
_NO = object()
# Field types whose order in Tryton is Python's order of the decoded values.
SORTABLE = frozenset({"integer", "float", "numeric", "date", "datetime", "timestamp", "boolean"})


def like_pattern(needle: str) -> str:
    """An ``ilike`` pattern matching at least every value whose casefold contains ``needle``
    (an ASCII needle): ``%`` and ``_`` escaped, and each character a non-ASCII character may
    fold into widened to ``%``."""
    parts = []
    for char in needle.casefold():
        if char in _FOLDED_INTO:
            parts.append("%")
        elif char in "%_\\":
            parts.append("\\" + char)
        else:
            parts.append(char)
    return "%" + "".join(parts) + "%"


def clause(condition: SourceFilter, info: Mapping[str, Any] | None) -> list[Any] | None:
    """The clause for a pushed filter, or None to leave it to the Hub's in-memory check.

    ``info`` is the field's ``fields_get`` entry (the last field of a dotted path); a path
    through a One2Many / Many2Many matches when any related record does: more, never fewer.
    """
    if info is None or info.get("searchable") is False:
        return None
    kind = str(info.get("type"))
    path, op, value = condition.path, condition.op, condition.value
    if info.get(EMULATED):
        if op not in (Op.EQ, Op.GT, Op.GTE, Op.LT, Op.LTE) or _coerce(value, kind) is _NO:
            return None
        return modified_clause(path.removesuffix(MODIFIED), op, _coerce(value, kind))
    if op is Op.ISNULL:
        return [path, "=" if value else "!=", None]
    if op is Op.CONTAINS or condition.fold:
        if kind not in _TEXT or not isinstance(value, str) or not value.isascii():
            return None
        return [path, "ilike", like_pattern(value)]
    if kind in _TEXT and op not in (Op.EQ, Op.NE, Op.IN):
        return None  # order comparisons of text follow the database's collation
    values = value if op is Op.IN else (value,)
    if not isinstance(values, tuple | list):
        return None
    coerced = [_coerce(v, kind) for v in values]
    if any(v is _NO for v in coerced):
        return None
    if op is Op.IN:
        return [path, "in", coerced]
    return [path, _COMPARE[op], coerced[0]]


def modified_clause(prefix: str, op: Op, value: datetime) -> list[Any]:
    """``COALESCE(write_date, create_date) <op> value`` without ``last_modified_at``: the write
    date, or the create date of a record never written (Tryton 7 leaves write_date null)."""
    compare = _COMPARE[op]
    written, created = f"{prefix}write_date", f"{prefix}create_date"
    return ["OR", [[written, compare, value]], [[written, "=", None], [created, compare, value]]]


def after(key: str | None, position: list[Any], *, descending: bool = False,
          nulls_last: bool = False) -> list[Any]:
    """Records strictly after ``position`` (``[value, id]``, or ``[id]`` without a key) in the
    order ``key ASC|DESC NULLS FIRST|LAST, id ASC``."""
    if key is None:
        return [["id", ">", position[-1]]]
    value, ident = position
    if value is None:
        among_nulls = [[key, "=", None], ["id", ">", ident]]
        return among_nulls if nulls_last else ["OR", among_nulls, [[key, "!=", None]]]
    beyond = ["OR", [[key, "<" if descending else ">", value]],
              [[key, "=", value], ["id", ">", ident]]]
    return [*beyond, [[key, "=", None]]] if nulls_last else beyond


def comes_after(key: list[Any], position: list[Any], *, descending: bool = False,
                nulls_last: bool = False) -> bool:
    """Whether a record's ``key`` (as ``after`` takes positions) sorts after ``position``."""
    if len(key) == 1:
        return bool(key[0] > position[0])
    (value, ident), (last, last_ident) = key, position
    if (value is None) != (last is None):
        return (value is None) == nulls_last
    if value is None or value == last:
        return bool(ident > last_ident)
    return bool(value < last) if descending else bool(value > last)


def _coerce(value: Any, kind: str) -> Any:
    """``value`` as the field type wants it, or ``_NO``."""
    if isinstance(value, bool) or kind == "boolean":
        return value if isinstance(value, bool) and kind == "boolean" else _NO
    if kind in _TEXT:
        return value if isinstance(value, str) else _NO
    if kind in _IDS:
        number = _decimal(value)
        if number is None or number != number.to_integral_value():
            return _NO
        return int(number)
    if kind == "numeric":
        number = _decimal(value)
        return _NO if number is None else number
    if kind == "float":
        # Tryton compares doubles: only numbers a double holds exactly as written go there.
        number = _decimal(value)
        if number is None:
            return _NO
        double = float(number)
        return double if Decimal(double) == number and math.isfinite(double) else _NO
    if kind == "date":
        return value if isinstance(value, date) and not isinstance(value, datetime) else _NO
    if kind in ("datetime", "timestamp"):
        if not isinstance(value, datetime):
            return _NO
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return _NO


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() and abs(number) < Decimal(2) ** 63 else None
