"""What the search endpoint is asked: property names, filters, and the keyset that splits it.

Push-down must never drop a record the canonical filter keeps (the Hub re-checks every record,
so sending a wider filter is fine, a narrower one is not). HubSpot's operators, as documented,
against patchbay's canonical semantics:

* ``EQ`` on text: returns every exact match (HubSpot compares string properties without
  regard to case, as its lower-case rule for ``IN`` shows, so sometimes more): a superset of
  patchbay's exact ``eq``, pushed; not for values with outer blanks, which HubSpot may have
  trimmed on write.
* ``IN``: documented to need lower-case values for string properties, so a value with letters
  could miss differently-cased records; pushed only when no value has letters (ids, codes).
* ``NEQ`` / ``NOT_IN``: case-insensitive too, so they would drop ``ACME`` for ``ne Acme``:
  never pushed.
* ``GT``/``GTE``/``LT``/``LTE``: pushed for datetimes on HubSpot's own datetime properties
  (epoch milliseconds). Number properties are not: whether a property is a number or a string
  (compared as text) is not known when the query is planned.
* ``CONTAINS_TOKEN`` matches whole words (with ``*`` wildcards), not substrings: never pushed.
* ``HAS_PROPERTY`` for ``isnull=false``: every record with a canonical value has a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from patchbay.core.connector import SourceFilter
from patchbay.core.filters import Op

from ._spec import Origin

__all__ = [
    "MAX_FILTERS",
    "TOP_LEVEL",
    "Keyset",
    "epoch_ms",
    "parse_ms",
    "property_of",
    "search_body",
    "search_filter",
]

# HubSpot allows more per filter group today; six is the older limit every account accepts.
# Filters beyond it are left to the Hub's in-memory check (a wider search, never a narrower one).
MAX_FILTERS = 6

# Fields of a HubSpot object beside ``properties`` (``associated`` is filled by this connector).
TOP_LEVEL = frozenset({"id", "createdAt", "updatedAt", "archived", "archivedAt", "associated"})

_DATETIME_PROPERTIES = frozenset({
    "createdate", "hs_createdate", "lastmodifieddate", "hs_lastmodifieddate", "closedate",
    "closed_date", "hs_lastactivitydate", "notes_last_updated",
})
_ORDERING = {Op.GT: "GT", Op.GTE: "GTE", Op.LT: "LT", Op.LTE: "LTE"}


def property_of(path: str, origin: Origin) -> str | None:
    """The HubSpot property a mapping path reads, if it can be searched on."""
    if path == "id":
        return "hs_object_id"
    if path == "updatedAt":
        return origin.modified
    if path == "createdAt":
        return "createdate"
    head, _, name = path.partition(".")
    if head == "properties" and name and "." not in name:
        return name
    return None


def search_filter(origin: Origin, condition: SourceFilter) -> dict[str, Any] | None:
    """The search API filter for ``condition``, or None when it cannot be sent safely."""
    name = property_of(condition.path, origin)
    if name is None or condition.fold:
        return None
    op, value = condition.op, condition.value
    if op is Op.ISNULL:
        return {"propertyName": name, "operator": "HAS_PROPERTY"} if value is False else None
    if isinstance(value, datetime):
        if op in _ORDERING and (name in _DATETIME_PROPERTIES or name == origin.modified):
            return {"propertyName": name, "operator": _ORDERING[op], "value": str(epoch_ms(value))}
        return None
    if op is Op.EQ and isinstance(value, str) and value and value == value.strip():
        return {"propertyName": name, "operator": "EQ", "value": value}
    if op is Op.IN and isinstance(value, tuple) and value and all(_caseless(v) for v in value):
        return {"propertyName": name, "operator": "IN", "values": list(value)}
    return None


def _caseless(value: object) -> bool:
    return isinstance(value, str) and bool(value) and value.lower() == value.upper()


def epoch_ms(moment: datetime) -> int:
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return int(aware.timestamp() * 1000)


def parse_ms(value: object) -> int | None:
    """Epoch milliseconds of a HubSpot datetime value (ISO 8601 text or epoch ms)."""
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        return epoch_ms(moment)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


@dataclass(frozen=True, slots=True)
class Keyset:
    """Where a search read stands, so the next search (window) starts right after it.

    ``t``: the last modification time delivered (epoch ms); ``ids``: the ids delivered at
    exactly that time (HubSpot sorts on one property only, so ties come in no particular order
    and are told apart by id). ``tie``: set while paging through more records of time ``t``
    than one search window holds, by id: the last id passed (``"0"`` before the first).
    """

    t: int | None = None
    ids: tuple[str, ...] = ()
    tie: str | None = None

    def seen(self, t: int, ident: str) -> bool:
        return t == self.t and ident in self.ids

    def after(self, t: int, ident: str) -> Keyset:
        return Keyset(t, (*self.ids, ident)) if t == self.t else Keyset(t, (ident,))

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": self.t, "ids": list(self.ids)}
        if self.tie is not None:
            out["tie"] = self.tie
        return out

    @classmethod
    def load(cls, position: object) -> Keyset | None:
        if not isinstance(position, Mapping) or set(position) not in ({"t", "ids"},
                                                                      {"t", "ids", "tie"}):
            return None
        t, ids, tie = position["t"], position["ids"], position.get("tie")
        if t is not None and type(t) is not int:
            return None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return None
        if tie is not None and (t is None or not isinstance(tie, str) or not tie.isdigit()):
            return None
        return cls(t, tuple(ids), tie)


def search_body(
    origin: Origin,
    filters: Sequence[dict[str, Any]],
    keyset: Keyset,
    properties: Sequence[str],
    limit: int,
    after: str | None,
) -> dict[str, Any]:
    """One search request: the pushed filters and the window's lower bound, ascending by time
    (or, inside a tie too long for one window, that time only, ascending by id)."""
    window: list[dict[str, Any]] = []
    sort = origin.modified
    if keyset.tie is not None:
        sort = "hs_object_id"
        window += [{"propertyName": origin.modified, "operator": "EQ", "value": str(keyset.t)},
                   {"propertyName": sort, "operator": "GT", "value": keyset.tie}]
    elif keyset.t is not None:
        window.append({"propertyName": origin.modified, "operator": "GTE",
                       "value": str(keyset.t)})
    chosen = [*window, *filters][:MAX_FILTERS]
    body: dict[str, Any] = {
        "filterGroups": [{"filters": chosen}] if chosen else [],
        "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
        "properties": list(properties),
        "limit": limit,
    }
    if after is not None:
        body["after"] = after
    return body
