"""Which canonical conditions become HubSpot search filters, one row per decision.

A condition is pushed only when HubSpot's operator returns at least every record patchbay's
canonical filter keeps (the Hub re-checks what comes back); the handler app tests show the
same end to end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from patchbay.connectors.hubspot import Origin
from patchbay.connectors.hubspot._search import Keyset, search_body, search_filter
from patchbay.core.connector import SourceFilter
from patchbay.core.filters import Op

CONTACTS = Origin(object="contacts")
DEALS = Origin(object="deals")
MOMENT = datetime(2024, 3, 1, 12, 0)  # naive UTC, as the Hub sends datetime bounds
MS = str(int(MOMENT.replace(tzinfo=UTC).timestamp() * 1000))


@pytest.mark.parametrize(("condition", "expected"), [
    (SourceFilter("properties.lastname", Op.EQ, "Smith"),
     {"propertyName": "lastname", "operator": "EQ", "value": "Smith"}),
    (SourceFilter("id", Op.EQ, "101"),
     {"propertyName": "hs_object_id", "operator": "EQ", "value": "101"}),
    (SourceFilter("id", Op.IN, ("101", "102")),
     {"propertyName": "hs_object_id", "operator": "IN", "values": ["101", "102"]}),
    (SourceFilter("properties.hs_sku", Op.IN, ("100-7", "200-1")),
     {"propertyName": "hs_sku", "operator": "IN", "values": ["100-7", "200-1"]}),
    (SourceFilter("updatedAt", Op.GTE, MOMENT),
     {"propertyName": "lastmodifieddate", "operator": "GTE", "value": MS}),
    (SourceFilter("createdAt", Op.LTE, MOMENT),
     {"propertyName": "createdate", "operator": "LTE", "value": MS}),
    (SourceFilter("properties.email", Op.ISNULL, False),
     {"propertyName": "email", "operator": "HAS_PROPERTY"}),
])
def test_pushed(condition: SourceFilter, expected: dict[str, Any]) -> None:
    assert search_filter(CONTACTS, condition) == expected


@pytest.mark.parametrize("condition", [
    SourceFilter("properties.lastname", Op.NE, "Smith"),  # NEQ ignores case: drops SMITH
    SourceFilter("properties.firstname", Op.IN, ("Ann", "Bob")),  # IN wants lower case
    SourceFilter("properties.lastname", Op.EQ, "Smith "),  # HubSpot may have trimmed it
    SourceFilter("properties.email", Op.CONTAINS, "ann", fold=True),  # tokens, not substrings
    SourceFilter("properties.lastname", Op.GT, "M"),  # text order is not canonical order
    SourceFilter("properties.amount", Op.GT, Decimal("10")),  # type of the property unknown
    SourceFilter("properties.amount", Op.EQ, Decimal("10")),
    SourceFilter("properties.custom_when", Op.GTE, MOMENT),  # not known to be a datetime
    SourceFilter("properties.email", Op.ISNULL, True),  # blank is null here, a value there
    SourceFilter("associated.companies", Op.EQ, "1001"),  # an association, not a property
    SourceFilter("properties.address.city", Op.EQ, "Leeds"),
])
def test_kept_in_memory(condition: SourceFilter) -> None:
    assert search_filter(CONTACTS, condition) is None


def test_the_modified_property_depends_on_the_object() -> None:
    pushed = search_filter(DEALS, SourceFilter("updatedAt", Op.GTE, MOMENT))
    assert pushed == {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": MS}


def test_windows_start_at_the_keyset_and_ties_page_by_id() -> None:
    first = search_body(DEALS, [], Keyset(), ["dealname"], 100, None)
    assert first == {"filterGroups": [], "sorts": [
        {"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["dealname"], "limit": 100}
    later = search_body(DEALS, [], Keyset(1_700_000_000_000, ("5",)), [], 50, "50")
    assert later["filterGroups"] == [{"filters": [
        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "1700000000000"}]}]
    assert later["after"] == "50"
    tie = search_body(DEALS, [], Keyset(1_700_000_000_000, ("5",), "17"), [], 50, None)
    assert tie["sorts"] == [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
    assert tie["filterGroups"][0]["filters"] == [
        {"propertyName": "hs_lastmodifieddate", "operator": "EQ", "value": "1700000000000"},
        {"propertyName": "hs_object_id", "operator": "GT", "value": "17"}]


def test_filters_beyond_the_limit_stay_in_memory() -> None:
    many = [{"propertyName": f"p{i}", "operator": "EQ", "value": "x"} for i in range(8)]
    body = search_body(DEALS, many, Keyset(1, ("1",)), [], 10, None)
    (group,) = body["filterGroups"]
    assert len(group["filters"]) == 6 and group["filters"][0]["operator"] == "GTE"


@pytest.mark.parametrize("position", [
    {"t": 1, "ids": ["1"]}, {"t": None, "ids": []}, {"t": 5, "ids": ["1", "2"], "tie": "3"},
])
def test_positions_round_trip(position: dict[str, Any]) -> None:
    keyset = Keyset.load(position)
    assert keyset is not None and keyset.dump() == position


@pytest.mark.parametrize("position", [
    {"after": "x", "skip": 1}, {"t": "1", "ids": []}, {"t": 1, "ids": [1]},
    {"t": None, "ids": [], "tie": "3"}, {"t": 1, "ids": [], "tie": "x"},
])
def test_bad_positions_are_refused(position: dict[str, Any]) -> None:
    assert Keyset.load(position) is None
