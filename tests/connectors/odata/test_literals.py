"""How values become OData literals and filters, per type and protocol version (pure functions).

The semantic tests (test_odata.py) check the same against a service that parses them; these pin
the exact text, which is what a reader compares with the OData specifications.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from patchbay.connectors.odata._literals import (
    filter_expression,
    key_predicate,
    literal,
    odata_dates,
)
from patchbay.core.connector import SourceFilter
from patchbay.core.filters import Op

GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.mark.parametrize(("value", "edm", "v4", "v2"), [
    ("O'Brien", None, "'O''Brien'", "'O''Brien'"),
    ("''", "Edm.String", "''''''", "''''''"),
    (GUID, "Edm.Guid", GUID, f"guid'{GUID}'"),
    (GUID.upper(), "Edm.Guid", GUID, f"guid'{GUID}'"),
    ("not-a-guid", "Edm.Guid", None, None),
    (datetime(2024, 1, 2, 3, 4, 5), None, "2024-01-02T03:04:05Z", "datetime'2024-01-02T03:04:05'"),
    (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "Edm.DateTimeOffset", "2024-01-02T03:04:05Z",
     "datetimeoffset'2024-01-02T03:04:05Z'"),
    (datetime(2024, 1, 2, 3, 4, 5), "Edm.DateTime", "2024-01-02T03:04:05Z",
     "datetime'2024-01-02T03:04:05'"),
    (date(2024, 1, 2), None, "2024-01-02", "datetime'2024-01-02T00:00:00'"),
    (date(2024, 1, 2), "Edm.Date", "2024-01-02", "datetime'2024-01-02T00:00:00'"),
    (datetime(2024, 1, 2, 10), "Edm.Date", None, None),  # a time of day on a date property
    (Decimal("12.50"), None, "12.50", "12.50M"),
    (Decimal("12.00"), None, "12", "12"),
    (Decimal("12.50"), "Edm.Decimal", "12.50", "12.50M"),
    (7, "Edm.Decimal", "7", "7M"),
    (7, None, "7", "7"),
    (7, "Edm.Int64", "7", "7L"),
    (Decimal("7.5"), "Edm.Int32", None, None),
    ("12.5", "Edm.Double", "12.5", "12.5d"),
    (True, None, "true", "true"),
    ("false", "Edm.Boolean", "false", "false"),
    (None, "Edm.Guid", "null", "null"),
    (float("nan"), None, None, None),
    ("10:00", "Edm.TimeOfDay", None, None),
])
def test_literals(value: Any, edm: str | None, v4: str | None, v2: str | None) -> None:
    assert literal(value, edm, "4") == v4
    assert literal(value, edm, "2") == v2


def test_a_filter_joins_fixed_and_pushed_conditions() -> None:
    types = {"id": "Edm.Guid", "changed": "Edm.DateTimeOffset"}
    conditions = (
        SourceFilter("name", Op.CONTAINS, "o'b", fold=True),
        SourceFilter("id", Op.IN, (GUID, GUID.replace("0f", "1f"))),
        SourceFilter("changed", Op.GTE, datetime(2024, 1, 1)),
        SourceFilter("address.city", Op.NE, "Köln"),
        SourceFilter("email", Op.ISNULL, False),
    )
    v4 = filter_expression(conditions, {"Category": "2"}, types, "4", "tolower")
    v2 = filter_expression(conditions, {"Category": "2"}, types, "2", "tolower")
    assert v4 == (
        "Category eq '2' and contains(tolower(name),'o''b') and "
        f"(id eq {GUID} or id eq {GUID.replace('0f', '1f')}) and "
        "changed ge 2024-01-01T00:00:00Z and address/city ne 'Köln' and email ne null"
    )
    assert v2 == (
        "Category eq '2' and substringof('o''b',tolower(name)) and "
        f"(id eq guid'{GUID}' or id eq guid'{GUID.replace('0f', '1f')}') and "
        "changed ge datetimeoffset'2024-01-01T00:00:00Z' and address/city ne 'Köln' and "
        "email ne null"
    )


def test_conditions_without_an_odata_form_are_refused() -> None:
    types = {"id": "Edm.Guid", "n": "Edm.Int32"}
    for condition in (
        SourceFilter("id", Op.EQ, "x"),  # not a guid
        SourceFilter("id", Op.CONTAINS, "0f8f"),  # contains on a guid
        SourceFilter("name", Op.CONTAINS, "x", fold=True),  # with fold_function None below
        SourceFilter("n", Op.GT, None),
        SourceFilter("name", Op.ISNULL, True),  # blank text is null only in memory
    ):
        with pytest.raises(ValueError, match="cannot write"):
            filter_expression((condition,), {}, types, "4", None)


def test_key_predicates() -> None:
    assert key_predicate(["id"], [GUID], {"id": "Edm.Guid"}, "4") == f"({GUID})"
    assert key_predicate(["id"], [GUID], {"id": "Edm.Guid"}, "2") == f"(guid'{GUID}')"
    assert key_predicate(["id"], ["nope"], {"id": "Edm.Guid"}, "4") is None
    assert key_predicate(["BusinessPartner"], ["O'Neil"], {}, "2") == "('O''Neil')"
    assert key_predicate(["SalesOrder", "SalesOrderItem"], ["1", "10"], {}, "2") == (
        "(SalesOrder='1',SalesOrderItem='10')")


def test_v2_json_dates_become_iso_text() -> None:
    row: dict[str, Any] = {
        "a": "/Date(1704412800000)/", "b": "/Date(1704412800000+0060)/",
        "c": "/Date(-86400000)/", "d": "/Date(nope)/", "e": {"f": "/Date(0)/"},
        "g": [{"h": "/Date(1000)/"}], "i": 5,
    }
    odata_dates(row)
    assert row == {
        "a": "2024-01-05T00:00:00Z", "b": "2024-01-05T01:00:00+01:00",
        "c": "1969-12-31T00:00:00Z", "d": "/Date(nope)/", "e": {"f": "1970-01-01T00:00:00Z"},
        "g": [{"h": "1970-01-01T00:00:01Z"}], "i": 5,
    }
