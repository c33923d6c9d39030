from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from patchbay.core.entities import Company, Contact, Invoice
from patchbay.core.mapping import (
    LINES_KEY,
    ROW_ERRORS_KEY,
    EntitySpec,
    MappingError,
    compile_mapping,
)
from patchbay.core.transforms import SourceForm, TransformContext

CTX = TransformContext(
    source="erp", phone_region="GB", timezone="Europe/London", currency="EUR", decimal="comma"
)


def spec(**data: Any) -> EntitySpec:
    return EntitySpec.model_validate({"from": {"table": "T"}, "id": "ID", **data})


def test_a_clean_row_becomes_a_record() -> None:
    mapping = compile_mapping(
        "erp",
        Contact,
        spec(
            updated_at={"path": "UPD", "transform": "datetime:%Y-%m-%d %H:%M:%S"},
            fields={
                "first_name": {"path": "FIRST", "transform": "squash"},
                "last_name": "LAST",
                "email": {"path": "EMAIL", "transform": "email"},
                "phone": {"path": "PHONE", "transform": "phone"},
                "company_id": {"path": "CUST", "transform": "ref"},
                "address.country": {"path": "COUNTRY", "transform": "country"},
                "created_at": {"path": "CREATED", "transform": "date:%d/%m/%Y"},
                "extra.credit_limit": {"path": "LIMIT", "transform": "decimal"},
            },
        ),
        CTX,
    )
    batch = mapping.map_batch(
        [
            {
                "ID": 7,
                "FIRST": "  Ann \t",
                "LAST": "Lee",
                "EMAIL": " Ann@Acme.Example ",
                "PHONE": "020 7946 0123",
                "CUST": 12,
                "COUNTRY": "Deutschland",
                "CREATED": "31/01/2020",
                "LIMIT": "1.234,50",
                "UPD": "2024-07-01 10:00:00",
            }
        ]
    )
    assert batch.quarantined == []
    [record] = batch.records
    assert isinstance(record, Contact)
    assert record.id == "erp:7" and record.remote_id == "7"
    assert record.full_name == "Ann Lee"
    assert record.email == "ann@acme.example"
    assert record.phone == "+442079460123"
    assert record.company_id == "erp:12"
    assert record.address is not None and record.address.country == "DE"
    assert record.created_at == date(2020, 1, 31)
    assert record.extra == {"credit_limit": Decimal("1234.50")}
    # 10:00 in London summer time is 09:00 UTC
    assert record.updated_at == datetime(2024, 7, 1, 9, 0, tzinfo=UTC)


def test_a_bad_optional_field_is_nulled_and_counted() -> None:
    mapping = compile_mapping(
        "erp",
        Contact,
        spec(
            fields={
                "email": {"path": "EMAIL", "transform": "email"},
                "created_at": {"path": "CREATED", "transform": "date:%d/%m/%Y"},
            }
        ),
        CTX,
    )
    batch = mapping.map_batch(
        [
            {"ID": 1, "EMAIL": "john.doe@", "CREATED": "31/02/2019"},
            {"ID": 2, "EMAIL": "ok@x.example", "CREATED": "01/02/2019"},
        ]
    )
    assert [r.id for r in batch.records] == ["erp:1", "erp:2"]
    assert batch.records[0].email is None and batch.records[0].created_at is None
    assert sum(batch.nulled.values()) == 2
    assert any(key.startswith("email:") for key in batch.nulled)
    assert any(key.startswith("created_at:") for key in batch.nulled)


def test_missing_id_or_required_field_quarantines_with_reasons() -> None:
    mapping = compile_mapping(
        "erp",
        Company,
        spec(
            fields={
                "name": {"path": "NAME", "transform": "squash"},
                "created_at": {
                    "path": "CREATED",
                    "transform": {"date": "%d/%m/%Y"},
                    "required": True,
                },
            }
        ),
        CTX,
    )
    batch = mapping.map_batch(
        [
            {"ID": None, "NAME": "Acme", "CREATED": "01/01/2020"},
            {"ID": 2, "NAME": "   ", "CREATED": "01/01/2020"},
            {"ID": 3, "NAME": "Acme", "CREATED": "2020-13-45"},
            {"ID": 4, "NAME": "Acme", "CREATED": "01/01/2020"},
        ]
    )
    assert [r.id for r in batch.records] == ["erp:4"]
    reasons = {q.remote_id: q.reasons for q in batch.quarantined}
    assert reasons[None] == ("id: missing (ID)",)
    assert reasons["2"] == ("name: required, but missing",)
    assert reasons["3"][0].startswith("created_at: ")
    assert batch.quarantined[1].raw == {"ID": 2, "NAME": "   ", "CREATED": "01/01/2020"}
    assert batch.indexes == [3]


def test_a_value_the_entity_rejects_is_nulled_when_optional() -> None:
    # A status outside the entity's choices, passed through without a map.
    mapping = compile_mapping(
        "erp", Company, spec(fields={"name": "NAME", "status": "STATUS"}), CTX
    )
    batch = mapping.map_batch([{"ID": 1, "NAME": "Acme", "STATUS": "blocked"}])
    [record] = batch.records
    assert record.status is None
    assert list(batch.nulled) == ["status: literal_error"]


def test_enum_map_with_fallback() -> None:
    mapping = compile_mapping(
        "erp",
        Company,
        spec(
            fields={
                "name": "NAME",
                "status": {
                    "path": "S",
                    "transform": {"map": {"A": "active", "I": "inactive", "*": "other"}},
                },
            }
        ),
        CTX,
    )
    batch = mapping.map_batch([{"ID": 1, "NAME": "x", "S": "a"}, {"ID": 2, "NAME": "y", "S": "X"}])
    assert [r.status for r in batch.records] == ["active", "other"]  # type: ignore[attr-defined]


def test_money_from_two_columns_and_lines() -> None:
    mapping = compile_mapping(
        "erp",
        Invoice,
        spec(
            fields={"total": {"path": ["TOTAL", "CUR"], "transform": "money"}},
            lines={
                "from": {"table": "L"},
                "key": "ID",
                "fields": {
                    "quantity": {"path": "QTY", "transform": "decimal:dot", "required": True},
                    "total": {"path": "AMOUNT", "transform": "money:dot"},
                },
            },
        ),
        CTX,
    )
    good = {
        "ID": 1,
        "TOTAL": "1.234,50",
        "CUR": "gbp",
        LINES_KEY: [{"ID": 1, "QTY": "2", "AMOUNT": "1234.50"}],
    }
    bad = {
        "ID": 2,
        "TOTAL": "10,00",
        "CUR": None,
        LINES_KEY: [{"ID": 2, "QTY": "two", "AMOUNT": "10.00"}],
    }
    batch = mapping.map_batch([good, bad])
    [record] = batch.records
    assert isinstance(record, Invoice)
    assert record.total is not None
    assert (record.total.amount, record.total.currency) == (Decimal("1234.50"), "GBP")
    assert record.lines[0].quantity == Decimal(2)
    assert record.lines[0].total is not None and record.lines[0].total.currency == "EUR"
    [quarantined] = batch.quarantined
    assert quarantined.reasons[0].startswith("lines[1].quantity: ")
    assert quarantined.raw["lines"] == [{"ID": 2, "QTY": "two", "AMOUNT": "10.00"}]


def test_rows_a_connector_could_only_partly_read_are_quarantined() -> None:
    mapping = compile_mapping("crm", Contact, spec(fields={"email": "EMAIL"}), CTX)
    batch = mapping.map_batch(
        [
            {
                "ID": "1",
                "EMAIL": "a@b.example",
                ROW_ERRORS_KEY: ["line 3: invalid utf-8 bytes in column 'X'"],
            }
        ]
    )
    assert batch.records == []
    assert batch.quarantined[0].reasons == ("line 3: invalid utf-8 bytes in column 'X'",)
    assert ROW_ERRORS_KEY not in batch.quarantined[0].raw


def test_composite_and_special_ids_are_encoded() -> None:
    mapping = compile_mapping(
        "erp",
        Contact,
        EntitySpec.model_validate({"from": {"table": "T"}, "id": ["A", "B"], "fields": {}}),
        CTX,
    )
    [record] = mapping.map_batch([{"A": "x/1", "B": 2.0}]).records
    assert record.id == "erp:x%2F1/2"
    assert record.remote_id == "x%2F1/2"


def test_raw_is_kept_only_when_asked() -> None:
    mapping = compile_mapping("erp", Contact, spec(fields={"email": "EMAIL"}), CTX)
    row = {"ID": 1, "EMAIL": "a@b.example", "BLOB": b"\x00\x01"}
    assert mapping.map_batch([row]).records[0].raw is None
    assert mapping.map_batch([row], raw=True).records[0].raw == {
        "ID": 1,
        "EMAIL": "a@b.example",
        "BLOB": "\x00\x01",
    }


def test_source_forms_decide_push_down() -> None:
    mapping = compile_mapping(
        "erp",
        Contact,
        spec(
            updated_at="UPD",
            fields={
                "email": {"path": "EMAIL", "transform": "email"},
                "title": "TITLE",
                "first_name": {"path": "F", "transform": "squash"},
                "company_id": {"path": "C", "transform": "ref"},
                "last_name": {"path": "L", "pushdown": False},
            },
        ),
        CTX,
    )
    forms = {name: p.form for name, p in mapping.pushables.items()}
    assert forms == {
        "email": SourceForm.FOLD,
        "title": SourceForm.EXACT,
        "company_id": SourceForm.REF,
        "updated_at": SourceForm.EXACT,
        "id": SourceForm.REF,
    }


@pytest.mark.parametrize(
    ("fields", "path", "message"),
    [
        ({"mail": "X"}, "fields.mail", "unknown target 'mail'"),
        (
            {"email": {"path": "X", "transform": "nope"}},
            "fields.email.transform",
            "unknown transform 'nope'",
        ),
        (
            {"phone": {"path": "X", "transform": "phone:XX"}},
            "fields.phone.transform",
            "unknown region",
        ),
        ({"email": {"path": ["A", "B"]}}, "fields.email", "needs a transform"),
        ({"updated_at": "X"}, "fields.updated_at", "own block"),
        (
            {"extra.a": {"path": "X", "transform": {"map": []}}},
            "fields.extra.a.transform",
            "map takes a mapping",
        ),
    ],
)
def test_mapping_errors_name_the_spec_path(fields: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(MappingError) as info:
        compile_mapping("erp", Contact, spec(fields=fields), CTX)
    assert info.value.path == path
    assert message in str(info.value)
