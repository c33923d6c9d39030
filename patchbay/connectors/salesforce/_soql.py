"""SOQL text: literals quoted as Salesforce documents them, and the conditions patchbay pushes.

Every value reaches a query through :func:`literal` (or :func:`contains_pattern` for ``LIKE``);
field and object names only through :func:`name`, which accepts API names and nothing else.
SOQL has no bound parameters, so this module is the whole injection boundary: a value can only
ever be data.

Quoting (SOQL and SOSL Reference, "Quoted String Escape Sequences"): strings are single-quoted
and the backslash escapes ``'`` ``"`` ``\\``, ``\\n`` ``\\r`` ``\\t`` ``\\f`` and ``\\uXXXX``; in
a ``LIKE`` pattern ``\\%`` and ``\\_`` match themselves. Dates (``2024-01-31``) and datetimes
(``2024-01-31T09:30:00Z``) are unquoted; numbers are plain; booleans and ``null`` are keywords.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from patchbay.core.connector import SourceFilter
from patchbay.core.filters import Op

__all__ = [
    "Query",
    "condition",
    "contains_pattern",
    "datetime_literal",
    "is_name",
    "literal",
    "name",
    "pushable",
]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*\Z")
_ESCAPES = {"'": "\\'", '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\f": "\\f"}
_COMPARE = {Op.EQ: "=", Op.NE: "!=", Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}
# Bounds that keep a pushed filter well inside the URL length Salesforce accepts on a GET.
MAX_TEXT = 1000
MAX_IN = 100


def is_name(text: str) -> bool:
    """An API name (``Account``, ``BillingCity``, ``Custom__c``) or a dotted relationship path
    (``Account.Name``)."""
    return bool(_NAME.match(text))


def name(text: str) -> str:
    if not is_name(text):
        raise ValueError(f"{text!r} is not a Salesforce API name")
    return text


def _quote(text: str, extra: dict[str, str] | None = None) -> str:
    out = []
    for char in text:
        escaped = _ESCAPES.get(char) or (extra or {}).get(char)
        if escaped is not None:
            out.append(escaped)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")  # other control characters, never raw
        else:
            out.append(char)
    return "'" + "".join(out) + "'"


def datetime_literal(moment: datetime) -> str:
    """UTC, unquoted; milliseconds only when there are some (the API keeps milliseconds)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


def literal(value: Any) -> str:
    """``value`` as a SOQL literal; ``ValueError`` when it has none."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, datetime):
        return datetime_literal(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")
    if isinstance(value, float) and math.isfinite(value):
        return format(Decimal(repr(value)), "f")
    raise ValueError(f"no SOQL literal for a {type(value).__name__}")


# The ASCII characters that str.casefold() makes out of non-ASCII ones (``ß`` -> ``ss``, ``ﬁ``
# -> ``fi``, the Kelvin sign -> ``k``, ``ẚ`` -> ``a`` + a modifier letter): in a needle, a run of
# these may stand for a character LIKE cannot fold. tests/connectors/salesforce/test_soql.py
# recomputes the set for the running Python's Unicode version.
CASEFOLD_ASCII = frozenset("afhijklnstwy")


def contains_pattern(needle: str) -> str | None:
    """A quoted ``LIKE`` pattern matching every value whose casefold contains ``needle``'s.

    The canonical ``contains`` compares ``casefold()`` text; ``LIKE`` is case-insensitive on
    ASCII only. So the needle must be ASCII, and each run of letters that some non-ASCII
    character folds into (``ss`` from ``ß``) becomes ``%``: the pattern can only match more,
    and the Hub re-checks. None when nothing literal is left to match on.
    """
    if not needle.isascii():
        return None
    risky = CASEFOLD_ASCII
    parts: list[str | None] = []  # None: a run of risky letters, matched by %
    for char in needle.casefold():
        if char not in risky:
            parts.append(char)
        elif parts and parts[-1] is not None:
            parts.append(None)
    while parts and parts[-1] is None:
        parts.pop()
    if not parts:
        return None
    body = "".join("%" if p is None else _like_escape(p) for p in parts)
    return "'%" + body + "%'"


def _like_escape(char: str) -> str:
    return _quote(char, {"%": "\\%", "_": "\\_"})[1:-1]


def like_literal(text: str) -> str:
    """``text`` quoted for ``LIKE`` so that it matches itself only (``%`` and ``_`` escaped)."""
    return _quote(text, {"%": "\\%", "_": "\\_"})


def _values(condition: SourceFilter) -> tuple[Any, ...]:
    value = condition.value
    return tuple(value) if isinstance(value, tuple | list | frozenset | set) else (value,)


def _orderable(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float | Decimal | date)


def _has_literal(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_TEXT
    try:
        literal(value)
    except ValueError:
        return False
    return value is not None


def pushable(condition: SourceFilter) -> bool:
    """Whether SOQL gives at least every row the canonical filter would (the Hub re-checks).

    SOQL compares text case-insensitively, so ``=`` and ``IN`` on text can only match more,
    but ``!=`` and ``<``/``>`` on text could match less: those stay in memory. Folded and
    ``contains`` conditions go only where ``LIKE`` folds as Python does (ASCII).
    """
    if not is_name(condition.path):
        return False
    op, values = condition.op, _values(condition)
    if op is Op.ISNULL:
        return isinstance(condition.value, bool)
    if op is Op.CONTAINS:
        return isinstance(condition.value, str) and contains_pattern(condition.value) is not None
    if not values or len(values) > MAX_IN or not all(_has_literal(v) for v in values):
        return False
    text = any(isinstance(v, str) for v in values)
    if condition.fold and not all(isinstance(v, str) and v.isascii() for v in values):
        return False
    if op in (Op.EQ, Op.IN):
        return op is Op.IN or len(values) == 1
    if op is Op.NE:
        return not text and len(values) == 1
    return op in _COMPARE and len(values) == 1 and _orderable(values[0])


def condition(cond: SourceFilter) -> str:
    """The SOQL of one condition :func:`pushable` accepted."""
    field = name(cond.path)
    if cond.op is Op.ISNULL:
        return f"{field} {'=' if cond.value else '!='} null"
    if cond.op is Op.CONTAINS:
        pattern = contains_pattern(str(cond.value))
        if pattern is None:
            raise ValueError(f"cannot push contains {cond.value!r} to SOQL")
        return f"{field} LIKE {pattern}"
    if cond.op is Op.IN:
        return f"{field} IN ({', '.join(literal(v) for v in _values(cond))})"
    return f"{field} {_COMPARE[cond.op]} {literal(cond.value)}"


@dataclass(frozen=True)
class Query:
    """``SELECT … FROM … WHERE … ORDER BY …``; every part is checked or quoted here."""

    fields: Sequence[str]
    sobject: str
    where: Sequence[str] = ()  # conditions, joined with AND (each parenthesised)
    order_by: Sequence[str] = ()
    subqueries: Sequence[Query] = ()
    limit: int | None = None

    def soql(self) -> str:
        columns = [name(f) for f in dict.fromkeys(self.fields)]
        columns += [f"({sub.soql()})" for sub in self.subqueries]
        # Names pass name(), values came through literal(): nothing here is raw input.
        text = f"SELECT {', '.join(columns)} FROM {name(self.sobject)}"  # noqa: S608
        if self.where:
            text += " WHERE " + " AND ".join(f"({w})" for w in self.where)
        if self.order_by:
            text += " ORDER BY " + ", ".join(self.order_by)
        if self.limit is not None:
            text += f" LIMIT {int(self.limit)}"
        return text
