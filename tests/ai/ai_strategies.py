"""Hypothesis strategies drawn from the tools' own JSON Schemas (the subset they use).

hypothesis-jsonschema is not installed here; the tools' schemas use few keywords (object with
properties, string with enum / format date or date-time / minLength, number, integer with
bounds, boolean, array with items / minItems / uniqueItems), so the strategies are built from
the schema directly. An unknown keyword fails loudly, so the generator cannot silently drift
from what the tools produce.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import strategies as st

_HANDLED = {
    "type",
    "enum",
    "format",
    "minLength",
    "minimum",
    "maximum",
    "items",
    "minItems",
    "uniqueItems",
    "description",
    "properties",
    "required",
    "additionalProperties",
    "$schema",
}


def from_schema(
    schema: Mapping[str, Any], *, leave_out: frozenset[str] = frozenset()
) -> st.SearchStrategy[Any]:
    unknown = set(schema) - _HANDLED
    if unknown:
        raise AssertionError(f"schema keywords the generator does not know: {sorted(unknown)}")
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema["type"]
    if kind == "object":
        return _object(schema, leave_out)
    if kind == "string":
        if schema.get("format") == "date":
            return st.dates(min_value=date(1990, 1, 1)).map(date.isoformat)
        if schema.get("format") == "date-time":
            return st.datetimes(min_value=datetime(1990, 1, 1), timezones=st.just(UTC)).map(
                datetime.isoformat
            )
        return st.text(min_size=schema.get("minLength", 0), max_size=12)
    if kind == "number":
        return st.integers(-(10**9), 10**9) | st.floats(
            allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12
        )
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(
            from_schema(schema["items"]),
            min_size=schema.get("minItems", 0),
            max_size=3,
            unique=bool(schema.get("uniqueItems")),
        )
    raise AssertionError(f"schema type the generator does not know: {kind}")


def _object(schema: Mapping[str, Any], leave_out: frozenset[str]) -> st.SearchStrategy[Any]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    optional = sorted(set(properties) - required - leave_out)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        chosen = (
            draw(st.lists(st.sampled_from(optional), max_size=4, unique=True)) if optional else []
        )
        return {name: draw(from_schema(properties[name])) for name in [*sorted(required), *chosen]}

    return build()
