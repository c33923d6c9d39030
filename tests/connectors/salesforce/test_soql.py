"""SOQL literals and pushed conditions, read back by the test org's SOQL parser.

The property tests say: whatever the text (quotes, backslashes, newlines, control characters,
any Unicode, SOQL of its own), it reaches Salesforce as one literal that decodes to exactly that
text; a ``LIKE`` built for ``contains`` matches every value the canonical filter matches.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sf_app import Cond, Like, SoqlError, decode_string, evaluate, parse

from patchbay.connectors.salesforce._soql import (
    CASEFOLD_ASCII,
    Query,
    condition,
    contains_pattern,
    datetime_literal,
    like_literal,
    literal,
    name,
    pushable,
)
from patchbay.core.connector import SourceFilter
from patchbay.core.filters import Op

INJECTIONS = ["' OR Id != null", "x') OR (Name != null", "\\' OR Name LIKE '%", "\\", "'",
              "a\\'b", "\n' OR true", "\u0000", "%_%", "Zürich Straße", "株式会社", "😀 emoji"]


def where_of(soql: str) -> Cond:
    node = parse(soql).where
    assert isinstance(node, Cond), f"the value escaped its literal: {node!r}"
    return node


@given(st.text())
def test_any_text_round_trips_as_one_string_literal(text: str) -> None:
    cond = where_of(f"SELECT Id FROM Account WHERE Name = {literal(text)}")
    assert (cond.field, cond.op, cond.value) == ("Name", "=", text)


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_attempts_stay_data(text: str) -> None:
    cond = where_of(f"SELECT Id FROM Account WHERE Name = {literal(text)} ")
    assert cond.value == text


@given(st.lists(st.text(), min_size=1, max_size=5))
def test_in_lists_round_trip(values: list[str]) -> None:
    text = condition(SourceFilter("Name", Op.IN, tuple(values)))
    cond = where_of(f"SELECT Id FROM Account WHERE {text}")
    assert cond.op == "IN" and cond.value == values


@given(st.text(min_size=1))
def test_like_literal_matches_itself_only(text: str) -> None:
    pattern = decode_string(like_literal(text), like=True)
    assert isinstance(pattern, Like)
    assert pattern.parts == (("text", text),)  # no wildcard survives: % and _ are escaped


_FOLDS_INTO = {"ss": "ß", "k": "\u212a", "fi": "\ufb01", "st": "\ufb06", "s": "\u017f"}


@st.composite
def containing(draw: st.DrawFn) -> tuple[str, str]:
    """An ASCII needle and a value whose casefold contains it, written in other cases and with
    non-ASCII characters that fold into parts of it."""
    needle = draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1))
    written = ""
    rest = needle.casefold()
    while rest:
        for plain, fancy in _FOLDS_INTO.items():
            if rest.startswith(plain) and draw(st.booleans()):
                written += fancy
                rest = rest[len(plain):]
                break
        else:
            written += rest[0].upper() if draw(st.booleans()) else rest[0]
            rest = rest[1:]
    return needle, draw(st.text(max_size=5)) + written + draw(st.text(max_size=5))


@given(containing())
def test_contains_pattern_never_misses_what_the_canonical_filter_finds(
    case: tuple[str, str]
) -> None:
    needle, value = case
    assert needle.casefold() in value.casefold()
    pattern = contains_pattern(needle)
    assume(pattern is not None)
    cond = where_of(f"SELECT Id FROM Account WHERE Name LIKE {pattern}")
    assert evaluate(cond, "Account", {"Name": value}), (needle, value, pattern)


def test_the_casefold_table_matches_this_python() -> None:
    found = {c for code in range(0x80, sys.maxunicode + 1)
             for c in chr(code).casefold() if c.isascii()}
    assert found == CASEFOLD_ASCII


def test_contains_pattern_shapes() -> None:
    assert contains_pattern("50%_off") == r"'%50\%\_o%'"  # f folds out of ﬀ/ﬁ…: a wildcard
    assert contains_pattern("o'b") == r"'%o\'b%'"
    assert contains_pattern("Acme") == "'%cme%'"  # a is risky (ẚ folds to a + a modifier)
    assert contains_pattern("sk") is None  # nothing literal left to narrow on
    assert contains_pattern("zür") is None  # non-ASCII: LIKE folds it differently


@pytest.mark.parametrize(("value", "text"), [
    (None, "null"), (True, "true"), (False, "false"), (42, "42"), (Decimal("1E+3"), "1000"),
    (Decimal("-12.50"), "-12.50"), (1.5, "1.5"), (date(2024, 2, 29), "2024-02-29"),
    (datetime(2024, 1, 1, 9, 30, tzinfo=UTC), "2024-01-01T09:30:00Z"),
    (datetime(2024, 1, 1, 10, 30, 0, 250000, tzinfo=timezone(timedelta(hours=1))),
     "2024-01-01T09:30:00.250Z"),
])
def test_literals_of_other_types(value: object, text: str) -> None:
    assert literal(value) == text


def test_datetimes_are_unquoted_and_parse_back() -> None:
    moment = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    cond = where_of(f"SELECT Id FROM Account WHERE SystemModstamp >= {datetime_literal(moment)}")
    assert cond.value == moment


def test_values_without_a_literal_and_bad_names_are_refused() -> None:
    for value in (float("nan"), Decimal("Infinity"), object(), [1]):
        with pytest.raises(ValueError, match="no SOQL literal"):
            literal(value)
    for bad in ("Name; DELETE", "Name FROM User", "", "1st", "a..b", "Name'"):
        with pytest.raises(ValueError, match="not a Salesforce API name"):
            name(bad)


@pytest.mark.parametrize(("cond", "ok"), [
    (SourceFilter("Name", Op.EQ, "Acme"), True),  # SOQL = folds case: can only match more
    (SourceFilter("Name", Op.NE, "Acme"), False),  # ... so != could match less
    (SourceFilter("Name", Op.GT, "Acme"), False),  # text order is the org's collation
    (SourceFilter("Amount", Op.NE, Decimal("5")), True),
    (SourceFilter("Amount", Op.GT, Decimal("5")), True),
    (SourceFilter("CloseDate", Op.LTE, date(2024, 1, 1)), True),
    (SourceFilter("IsActive", Op.GT, True), False),
    (SourceFilter("Name", Op.IN, ("a", "b")), True),
    (SourceFilter("Name", Op.IN, ()), False),
    (SourceFilter("Name", Op.IN, tuple(str(i) for i in range(101))), False),
    (SourceFilter("Name", Op.EQ, "x" * 1001), False),
    (SourceFilter("Name", Op.EQ, None), False),
    (SourceFilter("Email", Op.EQ, "ann@acme.example", fold=True), True),
    (SourceFilter("Email", Op.EQ, "zoë@acme.example", fold=True), False),
    (SourceFilter("Name", Op.CONTAINS, "corp"), True),
    (SourceFilter("Name", Op.CONTAINS, "ß"), False),
    (SourceFilter("Phone", Op.ISNULL, True), True),
    (SourceFilter("Account.Name", Op.EQ, "x"), True),
    (SourceFilter("Name) OR (Id", Op.EQ, "x"), False),
])
def test_what_is_pushed(cond: SourceFilter, ok: bool) -> None:
    assert pushable(cond) is ok


def test_a_whole_query() -> None:
    query = Query(
        fields=["Id", "Name", "Id"], sobject="Order",
        where=["Status = 'Draft'", condition(SourceFilter("TotalAmount", Op.GTE, Decimal("10")))],
        order_by=["SystemModstamp", "Id"],
        subqueries=[Query(["Quantity", "Id"], "OrderItems", order_by=["Id"])],
    )
    assert query.soql() == (
        "SELECT Id, Name, (SELECT Quantity, Id FROM OrderItems ORDER BY Id) FROM Order "
        "WHERE (Status = 'Draft') AND (TotalAmount >= 10) ORDER BY SystemModstamp, Id"
    )
    parsed = parse(query.soql())
    assert parsed.sobject == "Order" and parsed.subqueries[0].sobject == "OrderItems"


def test_the_parser_refuses_what_salesforce_refuses() -> None:
    with pytest.raises(SoqlError, match="invalid escape"):
        parse(r"SELECT Id FROM Account WHERE Name = 'a\qb'")
    with pytest.raises(SoqlError, match="unexpected end of query"):
        parse("SELECT Id FROM Account WHERE Name = 'a' OR")
    with pytest.raises(SoqlError, match="raw control character"):
        parse("SELECT Id FROM Account WHERE Name = 'a\nb'")
