from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from patchbay.core.entities import Contact, Invoice, Money
from patchbay.core.errors import QueryError
from patchbay.core.filters import BoolOp, Condition, Op, bind, parse, split_key, to_json


def contact(**fields: object) -> Contact:
    return Contact(id="crm:1", source="crm", remote_id="1", **fields)


def invoice(**fields: object) -> Invoice:
    return Invoice(id="erp:1", source="erp", remote_id="1", **fields)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("email", ("email", Op.EQ)),
        ("updated_at__gte", ("updated_at", Op.GTE)),
        ("address__country__in", ("address.country", Op.IN)),
        ("address.country", ("address.country", Op.EQ)),
        ("total__amount__lt", ("total.amount", Op.LT)),
    ],
)
def test_keys_split_into_field_and_operator(key: str, expected: tuple[str, Op]) -> None:
    assert split_key(key) == expected


def test_keyword_and_json_forms_parse_to_the_same_ast() -> None:
    keywords = parse({"email": "a@b.example", "status__in": "open,paid"})
    json_form = parse(
        {
            "and": [
                {"field": "email", "op": "eq", "value": "a@b.example"},
                {"field": "status", "op": "in", "value": "open,paid"},
            ]
        }
    )
    assert keywords == BoolOp(
        "and",
        (
            Condition("email", Op.EQ, "a@b.example"),
            Condition("status", Op.IN, "open,paid"),
        ),
    )
    assert json_form == keywords
    assert parse(to_json(keywords)) == keywords


def test_unknown_field_lists_the_entity_fields() -> None:
    with pytest.raises(QueryError) as info:
        bind(Contact, parse(emial="x"))
    message = str(info.value)
    assert "unknown field 'emial'" in message
    assert "email" in message and "full_name" in message and "address.country" in message


def test_unknown_operator_in_json_form_lists_operators() -> None:
    with pytest.raises(QueryError, match="unknown operator 'like'.*contains"):
        parse({"field": "email", "op": "like", "value": "x"})


def test_enum_values_are_checked() -> None:
    with pytest.raises(QueryError, match="'closed' is not one of draft, open, paid, void, other"):
        bind(Invoice, parse(status="closed"))


def test_bad_values_say_what_type_is_expected() -> None:
    with pytest.raises(QueryError, match="not a valid date"):
        bind(Invoice, parse(issued_on__gte="yesterday"))
    with pytest.raises(QueryError, match="not a valid money"):
        bind(Invoice, parse(total__gt="lots"))


def test_email_compares_lower_cased() -> None:
    predicate = bind(Contact, parse(email="Ann@ACME.example")).predicate
    assert predicate(contact(email="ann@acme.example"))


def test_contains_is_case_insensitive() -> None:
    predicate = bind(Contact, parse(full_name__contains="MÜLL")).predicate
    assert predicate(contact(full_name="Hans Müller"))
    assert not predicate(contact(full_name="Hans Meier"))


def test_null_matches_nothing_but_isnull() -> None:
    empty = contact()
    for where in (
        {"email": "x@y.example"},
        {"email__ne": "x@y.example"},
        {"email__contains": "x"},
        {"created_at__lt": "2030-01-01"},
        {"email__in": "a@b.example,c@d.example"},
    ):
        assert not bind(Contact, parse(where)).predicate(empty), where
    assert bind(Contact, parse(email__isnull=True)).predicate(empty)
    assert not bind(Contact, parse(email__isnull="false")).predicate(empty)


def test_money_orders_on_the_amount() -> None:
    record = invoice(total=Money(amount=Decimal("1234.50"), currency="EUR"))
    assert bind(Invoice, parse(total__gt="1000")).predicate(record)
    assert not bind(Invoice, parse(total__gt=2000)).predicate(record)
    assert bind(Invoice, parse(total__currency="EUR")).predicate(record)


def test_dates_and_datetimes_compare_as_such() -> None:
    record = invoice(issued_on=date(2024, 3, 1), updated_at=datetime(2024, 3, 1, 12, 0, tzinfo=UTC))
    assert bind(Invoice, parse(issued_on__gte="2024-02-29")).predicate(record)
    # A naive datetime filter value is UTC; an aware one is converted.
    assert bind(Invoice, parse(updated_at__lt="2024-03-01T12:00:01")).predicate(record)
    assert bind(Invoice, parse(updated_at__gt="2024-03-01T12:30:00+01:00")).predicate(record)


def test_or_and_not() -> None:
    node = parse(
        {
            "or": [
                {"field": "email", "op": "eq", "value": "a@x.example"},
                {"not": {"field": "full_name", "op": "contains", "value": "a"}},
            ]
        }
    )
    predicate = bind(Contact, node).predicate
    assert predicate(contact(email="a@x.example", full_name="Anna"))
    assert predicate(contact(full_name="Bob"))
    assert not predicate(contact(full_name="Anna"))


def test_extra_fields_are_filterable_without_a_declared_type() -> None:
    record = contact(extra={"segment": "gold"})
    assert bind(Contact, parse(extra__segment="gold")).predicate(record)
    assert not bind(Contact, parse(extra__segment__gt=3)).predicate(record)  # no TypeError


def test_in_needs_values() -> None:
    with pytest.raises(QueryError, match="non-empty list"):
        bind(Contact, parse(email__in=""))


def test_only_and_ed_conditions_are_push_down_candidates() -> None:
    bound = bind(
        Contact,
        parse(
            {
                "or": [
                    {"field": "email", "op": "eq", "value": "a@b.example"},
                    {"field": "email", "op": "eq", "value": "c@d.example"},
                ]
            }
        ),
    )
    assert bound.conjuncts == ()
    bound = bind(Contact, parse(email="a@b.example", full_name__contains="x"))
    assert [c.field.path for c in bound.conjuncts] == ["email", "full_name"]
