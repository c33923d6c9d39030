"""Transforms: the named, configurable steps a mapping applies to a source value.

A transform is written in config as ``name``, ``name:args`` (``date:%d/%m/%Y``, ``phone:US``,
``money:EUR``), ``{name: args}`` (``{map: {A: active, "*": other}}``) or a list applied in order.
Each name resolves to a factory that compiles the arguments ONCE into a plain function; bad
arguments are config errors at load time. A transform may declare a *source form* saying how a
canonical filter can be evaluated by the source (see :class:`SourceForm`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from patchbay.core import normalise as n
from patchbay.core.ids import canonical_id, part_text

__all__ = [
    "TRANSFORMS",
    "SourceForm",
    "Transform",
    "TransformContext",
    "compile_transform",
]


class SourceForm(enum.Enum):
    """How a source can evaluate a filter on a field mapped through this transform.

    EXACT: the canonical value equals the source value (plain paths, ``int`` of an int column).
    FOLD:  the canonical value is the source value lower-cased with outer whitespace trimmed, so a
           case-insensitive substring test at the source finds a superset of the matches.
    REF:   the canonical value is the canonical id made of the source value (``ref``, ids),
           so a filter on it becomes a filter on the remote key, or matches nothing here.
    """

    EXACT = "exact"
    FOLD = "fold"
    REF = "ref"


@dataclass(frozen=True)
class TransformContext:
    """What a transform may know besides its arguments: the source and its defaults."""

    source: str
    phone_region: str | None = None
    timezone: str = "UTC"
    currency: str | None = None
    decimal: str = "auto"


@dataclass(frozen=True)
class Transform:
    name: str
    fn: Callable[[Any], Any]
    form: SourceForm | None = None
    # Takes the tuple of values of a multi-column path (``money`` with [AMOUNT, CURRENCY]).
    takes_tuple: bool = False
    # Worth remembering per distinct source text: legacy columns of dates, codes and countries
    # repeat the same few thousand values across millions of rows.
    cacheable: bool = False
    # Runs on a null value too, instead of passing it through (const, default).
    on_null: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


Factory = Callable[[Any, TransformContext], Transform]


def _text_arg(args: Any, name: str) -> str | None:
    if args is None:
        return None
    if isinstance(args, str | int | float):
        return str(args)
    raise ValueError(f"{name} takes a text argument, got {type(args).__name__}")


def _simple(
    name: str, fn: Callable[[Any], Any], form: SourceForm | None = None, cacheable: bool = False
) -> Factory:
    def factory(args: Any, ctx: TransformContext) -> Transform:
        if args not in (None, ""):
            raise ValueError(f"{name} takes no arguments")
        return Transform(name, fn, form, cacheable=cacheable)

    return factory


def _lower(value: object) -> str | None:
    return None if value is None else str(value).lower()


def _upper(value: object) -> str | None:
    return None if value is None else str(value).upper()


def _text(value: object) -> str | None:
    return None if value is None else part_text(value)


def _phone(args: Any, ctx: TransformContext) -> Transform:
    """``phone[:REGION]``; with a path list ``[PHONE, COUNTRY]`` the row's country picks the
    region, so a CRM export with "020 7946 0123" next to "United Kingdom" parses as British."""
    region = _text_arg(args, "phone") or ctx.phone_region
    if region is not None:
        region = region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"phone: unknown region {region!r} (an ISO 3166 alpha-2 code)")
    phone, country = n.phone, n.country

    def by_row(value: Any) -> str | None:
        if not isinstance(value, tuple):
            return phone(value, region)
        number, where = value[0], value[1] if len(value) > 1 else None
        try:
            row_region = country(where) or region
        except n.NormaliseError:
            row_region = region
        if row_region not in phonenumbers.SUPPORTED_REGIONS:
            row_region = region
        return phone(number, row_region)

    return Transform("phone", by_row, takes_tuple=True)


def _date(args: Any, ctx: TransformContext) -> Transform:
    return Transform("date", n.compile_date(_text_arg(args, "date")), cacheable=True)


def _datetime(args: Any, ctx: TransformContext) -> Transform:
    fmt = _text_arg(args, "datetime")
    tz = ctx.timezone
    # "datetime:%d/%m/%Y %H:%M@Europe/Paris" overrides the source's time zone for one field.
    if fmt and "@" in fmt:
        fmt, _, tz = fmt.rpartition("@")
    return Transform("datetime", n.compile_datetime(fmt or None, tz), cacheable=True)


def _decimal(args: Any, ctx: TransformContext) -> Transform:
    style = _text_arg(args, "decimal") or ctx.decimal
    n.parse_decimal("1", style)  # rejects an unknown style now, at load time
    return Transform("decimal", n.compile_decimal(style))


def _money(args: Any, ctx: TransformContext) -> Transform:
    """``money[:CUR][,STYLE]``: an amount, with a fixed currency or a second path for it."""
    currency = ctx.currency
    style = ctx.decimal
    for token in (_text_arg(args, "money") or "").split(","):
        token = token.strip()
        if not token:
            continue
        if len(token) == 3 and token.isalpha() and token.isupper():
            currency = n.currency(token)
        else:
            n.parse_decimal("1", token)
            style = token
    parse = n.compile_decimal(style)
    to_currency = n.currency
    fixed = currency

    def money(value: Any) -> dict[str, Any] | None:
        if isinstance(value, tuple):
            amount_raw, currency_raw = value[0], value[1] if len(value) > 1 else None
        else:
            amount_raw, currency_raw = value, None
        amount = parse(amount_raw)
        if amount is None:
            return None
        code = to_currency(currency_raw) if currency_raw not in (None, "") else fixed
        if code is None:
            raise n.NormaliseError("money: no currency (give money:EUR or a currency column)")
        return {"amount": amount, "currency": code}

    return Transform("money", money, takes_tuple=True)


def _map(args: Any, ctx: TransformContext) -> Transform:
    if not isinstance(args, Mapping) or not args:
        raise ValueError(
            "map takes a mapping of source codes to canonical values, e.g. {A: active}"
        )
    table = {str(k): (None if v is None else str(v)) for k, v in args.items()}
    return Transform("map", n.compile_enum(table), cacheable=True)  # type: ignore[arg-type]


def _ref(args: Any, ctx: TransformContext) -> Transform:
    """The canonical id of a record of the same source (``company_id: {path: CUST_NO}``)."""
    source = ctx.source

    def ref(value: Any) -> str | None:
        parts = value if isinstance(value, tuple) else (value,)
        if any(v is None or v == "" for v in parts):
            return None
        return canonical_id(source, parts)

    return Transform("ref", ref, SourceForm.REF, takes_tuple=True, cacheable=True)


def _const(args: Any, ctx: TransformContext) -> Transform:
    return Transform("const", lambda value: args, on_null=True)


def _default(args: Any, ctx: TransformContext) -> Transform:
    return Transform(
        "default",
        lambda value: args if value is None or (isinstance(value, str) and not value.strip())
        else value,
        on_null=True,
    )


def _int(value: object) -> int | None:
    return n.integer(value)


TRANSFORMS: Mapping[str, Factory] = {
    "strip": _simple("strip", n.strip),
    "squash": _simple("squash", n.squash),
    "lower": _simple("lower", _lower, SourceForm.FOLD),
    "upper": _simple("upper", _upper),
    "text": _simple("text", _text),
    "email": _simple("email", n.email, SourceForm.FOLD),
    "phone": _phone,
    "date": _date,
    "datetime": _datetime,
    "decimal": _decimal,
    "money": _money,
    "currency": _simple("currency", n.currency, cacheable=True),
    "country": _simple("country", n.country, cacheable=True),
    "bool": _simple("bool", n.boolean, cacheable=True),
    "int": _simple("int", _int),
    "map": _map,
    "ref": _ref,
    "const": _const,
    "default": _default,
}


def compile_transform(spec: Any, ctx: TransformContext) -> list[Transform]:
    """Compile a transform spec (string, mapping or list of them) into transforms, in order.

    Raises ``ValueError`` with a message naming the transform; the config loader adds the path.
    """
    if spec is None:
        return []
    if isinstance(spec, list):
        return [t for item in spec for t in compile_transform(item, ctx)]
    if isinstance(spec, str):
        name, _, arg = spec.partition(":")
        args: Any = arg if arg else None
    elif isinstance(spec, Mapping) and len(spec) == 1:
        name, args = next(iter(spec.items()))
    else:
        raise ValueError(f"a transform is a name, 'name:args' or {{name: args}}; got {spec!r}")
    factory = TRANSFORMS.get(str(name).strip())
    if factory is None:
        raise ValueError(f"unknown transform {name!r}; transforms: {', '.join(sorted(TRANSFORMS))}")
    return [factory(args, ctx)]
