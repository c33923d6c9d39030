"""The filter grammar: one AST for every front door, and its semantics on canonical values.

Two spellings parse into the same AST:

* keywords / query parameters: ``email="ann@acme.example"``, ``updated_at__gte="2024-01-01"``,
  ``status__in="open,pending"``, ``address__country="GB"`` (``__`` also separates nested fields);
* JSON: ``{"and": [{"field": "email", "op": "eq", "value": "…"}]}`` with ``and``, ``or``, ``not``.

Semantics are defined on canonical values: eq/ne/in are exact on the normalised value (e-mail
addresses compare lower-cased); contains is a case-insensitive substring; gt/gte/lt/lte order
numbers, dates, datetimes and Money amounts; null matches nothing except ``isnull``.
A filter is bound to an entity once (fields checked, values coerced) and compiled to a predicate.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel

from patchbay.core.entities import Money, Record
from patchbay.core.errors import QueryError

__all__ = [
    "BoolOp",
    "BoundFilter",
    "Condition",
    "FieldInfo",
    "FieldKind",
    "Filter",
    "Op",
    "bind",
    "field_catalog",
    "parse",
    "to_json",
]


class Op(enum.StrEnum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    CONTAINS = "contains"
    ISNULL = "isnull"


ORDERING_OPS = frozenset({Op.GT, Op.GTE, Op.LT, Op.LTE})


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: Op
    value: Any


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: Literal["and", "or", "not"]
    items: tuple[Filter, ...]


Filter = Union[Condition, BoolOp]  # noqa: UP007 - a runtime alias used in isinstance checks


# --- the fields an entity can be filtered and ordered on ---------------------------------


class FieldKind(enum.StrEnum):
    TEXT = "text"
    EMAIL = "email"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    MONEY = "money"
    BOOL = "bool"
    ANY = "any"  # extra.<name>: no declared type, compared as given


@dataclass(frozen=True, slots=True)
class FieldInfo:
    path: str
    kind: FieldKind
    choices: tuple[str, ...] | None = None


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, types.UnionType) and args:
        annotation = args[0]
    return annotation


def _kind_of(annotation: Any, metadata: Sequence[Any]) -> tuple[FieldKind, tuple[str, ...] | None]:
    annotation = _unwrap_optional(annotation)
    if get_origin(annotation) is Annotated:
        metadata = [*metadata, *annotation.__metadata__]
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is Literal:
        return FieldKind.TEXT, tuple(str(a) for a in get_args(annotation))
    for meta in metadata:
        extra = getattr(meta, "json_schema_extra", None)
        if isinstance(extra, dict) and extra.get("format") == "email":
            return FieldKind.EMAIL, None
    if annotation is bool:
        return FieldKind.BOOL, None
    if annotation in (int, float, Decimal):
        return FieldKind.NUMBER, None
    if annotation is datetime or annotation is AwareDatetime:
        return FieldKind.DATETIME, None
    if annotation is date:
        return FieldKind.DATE, None
    if isinstance(annotation, type) and issubclass(annotation, Money):
        return FieldKind.MONEY, None
    return FieldKind.TEXT, None


_NOT_FILTERABLE = frozenset({"extra", "raw", "lines"})
_catalogs: dict[type[Record], dict[str, FieldInfo]] = {}


def field_catalog(model: type[Record]) -> dict[str, FieldInfo]:
    """Every filterable path of an entity: top-level fields, nested value fields, Money parts."""
    cached = _catalogs.get(model)
    if cached is not None:
        return cached
    catalog: dict[str, FieldInfo] = {}

    def walk(prefix: str, owner: type[BaseModel]) -> None:
        for name, info in owner.model_fields.items():
            if not prefix and name in _NOT_FILTERABLE:
                continue
            path = f"{prefix}{name}"
            inner = _unwrap_optional(info.annotation)
            if isinstance(inner, type) and issubclass(inner, BaseModel) and inner is not Money:
                walk(f"{path}.", inner)
                continue
            kind, choices = _kind_of(info.annotation, info.metadata)
            catalog[path] = FieldInfo(path, kind, choices)
            if kind is FieldKind.MONEY:
                catalog[f"{path}.amount"] = FieldInfo(f"{path}.amount", FieldKind.NUMBER)
                catalog[f"{path}.currency"] = FieldInfo(f"{path}.currency", FieldKind.TEXT)

    walk("", model)
    _catalogs[model] = catalog
    return catalog


def lookup_field(model: type[Record], path: str) -> FieldInfo:
    catalog = field_catalog(model)
    info = catalog.get(path)
    if info is not None:
        return info
    if path.startswith("extra.") and len(path) > len("extra."):
        return FieldInfo(path, FieldKind.ANY)
    raise QueryError(
        f"unknown field {path!r} for {model.entity}; fields: {', '.join(sorted(catalog))}, "
        "extra.<name>"
    )


# --- parsing -------------------------------------------------------------------------------


def parse(where: Filter | Mapping[str, Any] | None = None, **keywords: Any) -> Filter | None:
    """Parse any spelling of a filter into the AST; ``None`` when there is nothing to filter."""
    parts: list[Filter] = []
    if isinstance(where, Condition | BoolOp):
        parts.append(where)
    elif where:
        if not isinstance(where, Mapping):
            raise QueryError("a filter is a mapping of field__op to value, or the JSON form")
        if _is_json_form(where):
            parts.append(_parse_json(where, "where"))
        else:
            parts.extend(_parse_keywords(where))
    parts.extend(_parse_keywords(keywords))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))


def _is_json_form(obj: Mapping[str, Any]) -> bool:
    return bool(obj.keys() & {"and", "or", "not"}) or ("field" in obj and "op" in obj)


def _parse_keywords(mapping: Mapping[str, Any]) -> list[Filter]:
    out: list[Filter] = []
    for key, value in mapping.items():
        field, op = split_key(key)
        out.append(Condition(field, op, value))
    return out


def split_key(key: str) -> tuple[str, Op]:
    """``address__country__in`` -> (``address.country``, in). The op suffix is optional."""
    head, sep, tail = key.rpartition("__")
    if sep and tail in Op.__members__.values():
        field, op = head, Op(tail)
    else:
        field, op = key, Op.EQ
    return field.replace("__", "."), op


def _parse_json(obj: Any, where: str) -> Filter:
    if not isinstance(obj, Mapping):
        raise QueryError(f"{where}: expected an object, got {type(obj).__name__}")
    if "and" in obj or "or" in obj:
        kind: Literal["and", "or"] = "and" if "and" in obj else "or"
        items = obj[kind]
        if not isinstance(items, list) or not items:
            raise QueryError(f"{where}.{kind}: expected a non-empty list of filters")
        return BoolOp(
            kind, tuple(_parse_json(x, f"{where}.{kind}[{i}]") for i, x in enumerate(items))
        )
    if "not" in obj:
        return BoolOp("not", (_parse_json(obj["not"], f"{where}.not"),))
    unknown = set(obj) - {"field", "op", "value"}
    if unknown or "field" not in obj:
        raise QueryError(
            f"{where}: a condition is {{'field', 'op', 'value'}}; got keys {sorted(obj)}"
        )
    try:
        op = Op(obj.get("op", "eq"))
    except ValueError:
        raise QueryError(
            f"{where}.op: unknown operator {obj.get('op')!r}; operators: {', '.join(Op)}"
        ) from None
    return Condition(str(obj["field"]), op, obj.get("value"))


def to_json(node: Filter | None) -> Any:
    """The JSON form of a filter (for cursors, audit and explain)."""
    if node is None:
        return None
    if isinstance(node, Condition):
        return {"field": node.field, "op": str(node.op), "value": _json_value(node.value)}
    if node.op == "not":
        return {"not": to_json(node.items[0])}
    return {node.op: [to_json(item) for item in node.items]}


def _json_value(value: Any) -> Any:
    if isinstance(value, list | tuple | frozenset | set):
        return [_json_value(v) for v in value]
    if isinstance(value, date | Decimal):
        return value.isoformat() if isinstance(value, date) else str(value)
    return value


# --- binding: check fields, coerce values, compile a predicate ------------------------------


@dataclass(frozen=True, slots=True)
class BoundCondition:
    field: FieldInfo
    op: Op
    value: Any  # coerced to the field's canonical type (a tuple for ``in``, a bool for isnull)


@dataclass(frozen=True)
class BoundFilter:
    """A filter checked against an entity: its predicate and its top-level conjuncts."""

    node: Filter | None
    predicate: Callable[[Record], bool]
    conjuncts: tuple[BoundCondition, ...]  # the AND-ed conditions, candidates for push-down


def bind(model: type[Record], node: Filter | None) -> BoundFilter:
    if node is None:
        return BoundFilter(None, lambda record: True, ())
    predicate = _compile(model, node)
    conjuncts: list[BoundCondition] = []
    for item in _flatten_and(node):
        if isinstance(item, Condition):
            conjuncts.append(_bind_condition(model, item))
    return BoundFilter(node, predicate, tuple(conjuncts))


def _flatten_and(node: Filter) -> Iterable[Filter]:
    if isinstance(node, BoolOp) and node.op == "and":
        for item in node.items:
            yield from _flatten_and(item)
    else:
        yield node


def _bind_condition(model: type[Record], cond: Condition) -> BoundCondition:
    info = lookup_field(model, cond.field)
    where = f"{cond.field}__{cond.op}"
    if cond.op is Op.ISNULL:
        return BoundCondition(info, cond.op, _coerce_bool(cond.value, where, default=True))
    if cond.value is None:
        raise QueryError(f"{where}: a value is required (use {cond.field}__isnull to match nulls)")
    if cond.op is Op.CONTAINS:
        if info.kind not in (FieldKind.TEXT, FieldKind.EMAIL, FieldKind.ANY):
            raise QueryError(f"{where}: contains works on text fields; {cond.field} is {info.kind}")
        return BoundCondition(info, cond.op, str(cond.value).casefold())
    if cond.op in ORDERING_OPS and (info.kind is FieldKind.BOOL or info.choices):
        raise QueryError(f"{where}: {cond.field} cannot be ordered")
    if cond.op is Op.IN:
        values = cond.value
        if isinstance(values, str):
            values = [v for v in values.split(",") if v != ""]
        if not isinstance(values, list | tuple | set | frozenset) or not values:
            raise QueryError(f"{where}: expected a non-empty list (or a comma-separated string)")
        return BoundCondition(info, cond.op, tuple(coerce_value(info, v, where) for v in values))
    return BoundCondition(info, cond.op, coerce_value(info, cond.value, where))


def _coerce_bool(value: Any, where: str, *, default: bool | None = None) -> bool:
    if value is None and default is not None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y", "t"):
        return True
    if text in ("false", "0", "no", "n", "f"):
        return False
    raise QueryError(f"{where}: expected true or false, got {value!r}")


def coerce_value(info: FieldInfo, value: Any, where: str) -> Any:
    """Turn a filter value (often text from a URL) into the field's canonical type."""
    kind = info.kind
    try:
        if kind is FieldKind.TEXT:
            text = str(value)
            if info.choices is not None and text not in info.choices:
                raise QueryError(f"{where}: {text!r} is not one of {', '.join(info.choices)}")
            return text
        if kind is FieldKind.EMAIL:
            return str(value).strip().lower()
        if kind in (FieldKind.NUMBER, FieldKind.MONEY):
            if isinstance(value, bool):
                raise ValueError(value)
            number = Decimal(str(value).strip())
            if not number.is_finite():
                raise ValueError(value)
            return number
        if kind is FieldKind.DATE:
            if isinstance(value, datetime):
                return value.date()
            if isinstance(value, date):
                return value
            return date.fromisoformat(str(value).strip())
        if kind is FieldKind.DATETIME:
            if isinstance(value, datetime):
                moment = value
            elif isinstance(value, date):
                moment = datetime(value.year, value.month, value.day)
            else:
                moment = datetime.fromisoformat(str(value).strip())
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC)
        if kind is FieldKind.BOOL:
            return _coerce_bool(value, where)
    except (ValueError, InvalidOperation):
        raise QueryError(f"{where}: {value!r} is not a valid {kind}") from None
    return value


def getter(info: FieldInfo) -> Callable[[Record], Any]:
    """A function reading the canonical value of a path; None when any step is missing."""
    path = info.path
    if path.startswith("extra."):
        key = path[len("extra.") :]
        return lambda record: record.extra.get(key)
    parts = path.split(".")
    money = info.kind is FieldKind.MONEY

    def get(record: Record) -> Any:
        value: Any = record
        for part in parts:
            value = getattr(value, part, None)
            if value is None:
                return None
        return value.amount if money else value

    if len(parts) == 1 and not money:
        name = parts[0]
        return lambda record: getattr(record, name)
    return get


def _compile(model: type[Record], node: Filter) -> Callable[[Record], bool]:
    if isinstance(node, BoolOp):
        inner = [_compile(model, item) for item in node.items]
        if node.op == "and":
            return lambda r: all(p(r) for p in inner)
        if node.op == "or":
            return lambda r: any(p(r) for p in inner)
        only = inner[0]
        return lambda r: not only(r)
    bound = _bind_condition(model, node)
    return compile_condition(bound)


def compile_condition(cond: BoundCondition) -> Callable[[Record], bool]:
    get = getter(cond.field)
    value = cond.value
    op = cond.op
    if op is Op.ISNULL:
        return lambda r: (get(r) is None) is value

    def safe(test: Callable[[Any], bool]) -> Callable[[Record], bool]:
        def predicate(record: Record) -> bool:
            current = get(record)
            if current is None:
                return False
            try:
                return test(current)
            except TypeError:  # extra.<name> holding another type than the filter value
                return False

        return predicate

    if op is Op.EQ:
        return safe(lambda v: bool(v == value))
    if op is Op.NE:
        return safe(lambda v: bool(v != value))
    if op is Op.IN:
        return safe(lambda v: v in value)
    if op is Op.CONTAINS:
        return safe(lambda v: value in str(v).casefold())
    if op is Op.GT:
        return safe(lambda v: bool(v > value))
    if op is Op.GTE:
        return safe(lambda v: bool(v >= value))
    if op is Op.LT:
        return safe(lambda v: bool(v < value))
    return safe(lambda v: bool(v <= value))
