"""Consumer policies enforced by the Hub: entities, operations, fields, row filters, masks,
tenants, the catalog — over the demo (an ERP in SQLite and a CRM export in CSV)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from governance_kit import governed

from patchbay import AccessDenied, Hub, RecordNotFound, SyncHub
from patchbay.config import load_config
from patchbay.core.entities import Contact, Record
from patchbay.core.errors import ConfigError
from patchbay.core.filters import BoolOp, Condition, Op
from patchbay.core.policy import Masker, parse_row_filter, record_to_json

BOT: dict[str, Any] = {
    "description": "Support assistant",
    "entities": {
        "ticket": {"operations": ["query", "get"]},
        "contact": {
            "fields": {"allow": ["first_name", "last_name", "email", "company_id", "source"]},
            "where": "source = erp",
            "mask": {"email": "partial"},
        },
        "invoice": {"operations": ["get"]},
    },
}


# The example of the README section "Policies and audit", verbatim.
README_EXAMPLE = """\
secret_key: env:PATCHBAY_SECRET_KEY        # hash masking derives its key from it (HKDF)
redis: redis://127.0.0.1:6379/0            # optional: rate limits shared by every worker

consumers:
  local: {trusted: true}
  support-bot:
    description: "Support assistant"
    tenant: acme                           # bound: any other tenant is refused
    rate_limit: {requests: 120, per_seconds: 60}
    entities:
      ticket: {operations: [query, get]}
      contact:
        fields: {allow: [id, first_name, last_name, email, company_id, source]}
        where: "source in [crm]"           # or {source__in: [crm]}, or the JSON filter form
        mask: {email: partial}
  finance-assistant:
    entities:
      invoice:
        where: "status != void"            # null status does not match either
        mask: {customer_id: hash, lines.description: redact}
      contact:
        fields: {deny: [phone, mobile, address]}
        mask: {email: hash}
"""


async def records(hub: Hub, entity: str, where: Any = None, **kwargs: Any) -> list[Any]:
    return [r async for r in hub.query(entity, where, **kwargs)]


# --- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "path", "says"),
    [
        ({"nope": {}}, "consumers.bot.entities.nope", "unknown entity"),
        (
            {"contact": {"fields": {"allow": ["salary"]}}},
            "consumers.bot.entities.contact.fields",
            "no field 'salary'",
        ),
        (
            {"contact": {"fields": {"deny": ["id"]}}},
            "consumers.bot.entities.contact.fields.deny",
            "always visible",
        ),
        (
            {"contact": {"mask": {"created_at": "redact"}}},
            "consumers.bot.entities.contact.mask.created_at",
            "not a string field",
        ),
        (
            {"contact": {"mask": {"address.planet": "redact"}}},
            "consumers.bot.entities.contact.mask.address.planet",
            "no field",
        ),
        (
            {"contact": {"mask": {"id": "hash"}}},
            "consumers.bot.entities.contact.mask.id",
            "id cannot be masked",
        ),
        (
            {"contact": {"fields": {"allow": ["first_name"]}, "mask": {"email": "redact"}}},
            "consumers.bot.entities.contact.mask.email",
            "not visible",
        ),
        (
            {"contact": {"fields": {"allow": ["raw", "email"]}, "mask": {"email": "redact"}}},
            "consumers.bot.entities.contact.fields.allow",
            "raw holds the source row",
        ),
        (
            {"contact": {"where": "salary > 3"}},
            "consumers.bot.entities.contact.where",
            "unknown field 'salary'",
        ),
        (
            {"contact": {"where": "status is void"}},
            "consumers.bot.entities.contact.where",
            "FIELD OP VALUE",
        ),
    ],
)
def test_a_wrong_policy_fails_at_load_naming_the_path(
    demo_dir: Path, rules: dict[str, Any], path: str, says: str
) -> None:
    config = governed(demo_dir, {"bot": {"entities": rules}})
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert info.value.path == path
    assert says in info.value.message


def test_hash_masking_needs_a_secret_key(demo_dir: Path) -> None:
    config = governed(demo_dir, {"bot": {"entities": {"contact": {"mask": {"email": "hash"}}}}})
    text = config.read_text().replace("secret_key:", "old_secret_key_was:")
    config.write_text(
        "\n".join(line for line in text.splitlines() if "old_secret_key_was" not in line)
    )
    with pytest.raises(ConfigError, match="hash masking needs secret_key"):
        load_config(config)


def test_allow_and_deny_together_are_refused(demo_dir: Path) -> None:
    config = governed(
        demo_dir,
        {"bot": {"entities": {"contact": {"fields": {"allow": ["email"], "deny": ["phone"]}}}}},
    )
    with pytest.raises(ConfigError, match="either allow"):
        load_config(config)


@pytest.mark.parametrize(
    ("text", "node"),
    [
        ("status != void", Condition("status", Op.NE, "void")),
        ("source in [crm, 'erp']", Condition("source", Op.IN, ["crm", "erp"])),
        (
            "total.amount >= 10 and status = 'open'",
            BoolOp(
                "and", (Condition("total.amount", Op.GTE, "10"), Condition("status", Op.EQ, "open"))
            ),
        ),
        ({"status__ne": "void"}, Condition("status", Op.NE, "void")),
        ({"field": "status", "op": "ne", "value": "void"}, Condition("status", Op.NE, "void")),
    ],
)
def test_row_filters_read_the_filter_grammar(text: Any, node: Any) -> None:
    assert parse_row_filter(text) == node


# --- masks ------------------------------------------------------------------------------------


def test_masks() -> None:
    mask = Masker("k" * 32)
    assert mask("redact", "ann@acme.example") == "[redacted]"
    assert mask("partial", "ann@acme.example") == "a***@acme.example"
    assert mask("partial", "Annabel") == "A***"
    assert mask("last4", "4111111111111111") == "***1111"
    assert mask("last4", "1234") == "***"  # never the whole value
    hashed = mask("hash", "erp:10001")
    assert hashed.startswith("hash:") and len(hashed) == 25
    assert hashed == mask("hash", "erp:10001") != mask("hash", "erp:10002")
    assert Masker("another key")("hash", "erp:10001") != hashed  # keyed, not a plain digest
    assert "k" * 8 not in repr(mask)


# --- who sees what ----------------------------------------------------------------------------


async def test_a_trusted_consumer_sees_everything(demo_dir: Path) -> None:
    async with Hub.from_config(governed(demo_dir, {"bot": BOT})) as hub:
        everything = await records(hub, "contact")
    assert all(isinstance(r, Contact) for r in everything)
    assert {r.source for r in everything} == {"erp", "crm"}


async def test_a_consumer_without_a_policy_sees_nothing(demo_dir: Path) -> None:
    async with Hub.from_config(governed(demo_dir, {"stranger": {}})) as hub:
        with pytest.raises(AccessDenied, match="sees nothing"):
            await records(hub, "contact", consumer="stranger")
        with pytest.raises(AccessDenied):
            await hub.get("contact", "erp:10001", consumer="stranger")
        with pytest.raises(AccessDenied):
            await hub.fetch("contact", consumer="stranger")
        assert hub.catalog("stranger") == []
        with pytest.raises(AccessDenied, match="unknown consumer"):
            hub.catalog("nobody")


async def test_entities_and_operations(demo_dir: Path) -> None:
    async with Hub.from_config(governed(demo_dir, {"bot": BOT})) as hub:
        with pytest.raises(AccessDenied, match="may not read company"):
            await records(hub, "company", consumer="bot")
        with pytest.raises(AccessDenied, match="may not query invoice"):
            await records(hub, "invoice", consumer="bot")
        with pytest.raises(AccessDenied, match="may not query invoice"):
            await hub.fetch("invoice", consumer="bot")
        with pytest.raises(AccessDenied):
            await hub.explain("invoice", consumer="bot")
        one = (await hub.fetch("invoice", limit=1)).records[0]
        assert (await hub.get("invoice", one.id, consumer="bot")).id == one.id


async def test_only_allowed_fields_come_out(demo_dir: Path) -> None:
    async with Hub.from_config(governed(demo_dir, {"bot": BOT})) as hub:
        seen = await records(hub, "contact", consumer="bot")
        page = await hub.fetch("contact", consumer="bot", limit=5)
        got = await hub.get("contact", "erp:10002", consumer="bot")
    expected = {"id", "source", "first_name", "last_name", "email", "company_id"}
    for record in [*seen, *page.records, got]:
        assert set(record_to_json(record)) == expected
        with pytest.raises(AttributeError):
            record.phone  # noqa: B018 - a denied field is absent, not null
    assert record_to_json(got) == {
        "id": "erp:10002",
        "source": "erp",
        "first_name": "Niamh",
        "last_name": "Smith",
        "email": "n***@turner-packaging.de",
        "company_id": "erp:10002",
    }


async def test_denied_fields_and_raw(demo_dir: Path) -> None:
    rules = {"contact": {"fields": {"deny": ["phone", "mobile", "address"]}}}
    async with Hub.from_config(governed(demo_dir, {"bot": {"entities": rules}})) as hub:
        got = await hub.get("contact", "erp:10002", consumer="bot")
        assert not {"phone", "mobile", "address", "raw"} & set(record_to_json(got))
        assert record_to_json(got)["email"] == "niamh.smith@turner-packaging.de"
        for bad in ({"phone": "1"}, {"address__country": "GB"}, {"phone__isnull": True}):
            with pytest.raises(AccessDenied, match="not visible"):
                await records(hub, "contact", consumer="bot", **bad)
        with pytest.raises(AccessDenied, match="order contact by phone"):
            await records(hub, "contact", consumer="bot", order_by="-phone")
        with pytest.raises(AccessDenied, match="raw source rows"):
            await hub.get("contact", "erp:10002", consumer="bot", raw=True)
        with pytest.raises(AccessDenied, match="raw source rows"):
            await records(hub, "contact", consumer="bot", raw=True)
        # The JSON form, nested anywhere, is checked the same.
        where = {
            "or": [
                {"field": "email", "op": "eq", "value": "a@b.c"},
                {"not": {"field": "phone", "op": "isnull"}},
            ]
        }
        with pytest.raises(AccessDenied, match="phone"):
            await records(hub, "contact", where, consumer="bot")


async def test_since_needs_updated_at_visible(demo_dir: Path) -> None:
    rules = {"contact": {"fields": {"allow": ["email"]}}}
    async with Hub.from_config(governed(demo_dir, {"bot": {"entities": rules}})) as hub:
        with pytest.raises(AccessDenied, match="since"):
            await records(hub, "contact", consumer="bot", since="2020-01-01")


async def test_masked_fields_cannot_be_filtered_or_sorted_by_their_clear_value(
    demo_dir: Path,
) -> None:
    async with Hub.from_config(governed(demo_dir, {"bot": BOT})) as hub:
        for bad in (
            {"email": "niamh.smith@turner-packaging.de"},
            {"email__contains": "niamh"},
            {"email__in": "a@b.c,d@e.f"},
            {"email__ne": "x@y.z"},
        ):
            with pytest.raises(AccessDenied, match="masked") as info:
                await records(hub, "contact", consumer="bot", **bad)
            assert "niamh" not in str(info.value)
        with pytest.raises(AccessDenied, match="masked"):
            await records(hub, "contact", consumer="bot", order_by="email")
        # isnull tells nothing the masked value does not: allowed.
        nulls = await records(hub, "contact", consumer="bot", email__isnull=True)
        assert nulls and all(r.email is None for r in nulls)


async def test_masks_on_nested_values_lines_and_extra(demo_dir: Path) -> None:
    rules = {
        "contact": {"mask": {"address": "redact", "last_name": "last4", "company_id": "hash"}},
        "order": {"mask": {"customer_id": "hash", "lines.sku": "partial"}},
        "company": {"mask": {"extra.credit_limit": "redact"}},
    }
    async with Hub.from_config(governed(demo_dir, {"bot": {"entities": rules}})) as hub:
        contact = record_to_json(await hub.get("contact", "erp:10002", consumer="bot"))
        clear = await hub.get("contact", "erp:10002")
        orders = await records(hub, "order", consumer="bot")
        clear_orders = await records(hub, "order")
        company = record_to_json(await hub.get("company", "erp:10002", consumer="bot"))
        assert (await hub.get("company", "erp:10002")).extra["credit_limit"] is not None
    assert contact["address"]["country"] == "[redacted]"
    assert contact["address"]["city"] is None  # null stays null
    assert clear.last_name == "Smith"
    assert contact["last_name"] == "***mith"
    assert company["extra"]["credit_limit"] == "[redacted]"
    # Every line of every order is masked, and hashed ids still join: equal values, equal hashes.
    assert all(line.sku.endswith("***") and len(line.sku) == 4 for o in orders for line in o.lines)
    assert sum(len(o.lines) for o in orders) > 0
    by_customer = {o.customer_id for o in clear_orders if o.customer_id == clear.company_id}
    assert by_customer
    assert any(o.customer_id == contact["company_id"] for o in orders)
    assert contact["company_id"].startswith("hash:")


async def test_row_filters_narrow_queries_and_gets(demo_dir: Path) -> None:
    rules = {"invoice": {"where": "status != void", "operations": ["query", "get"]}}
    async with Hub.from_config(governed(demo_dir, {"bot": {"entities": rules}})) as hub:
        everything = await records(hub, "invoice")
        seen = await records(hub, "invoice", consumer="bot")
        paid = await records(hub, "invoice", consumer="bot", status="paid")
        void = [r for r in everything if r.status == "void"]
        assert void and seen
        assert [r.id for r in seen] == [
            r.id for r in everything if r.status is not None and r.status != "void"
        ]
        assert all(r.status == "paid" for r in paid) and paid
        # Asking for what the row filter hides gives nothing, not an error.
        assert await records(hub, "invoice", consumer="bot", status="void") == []
        # A record outside the row filter does not exist for the consumer.
        with pytest.raises(RecordNotFound):
            await hub.get("invoice", void[0].id, consumer="bot")
        assert (await hub.get("invoice", seen[0].id, consumer="bot")).id == seen[0].id


async def test_a_source_row_filter_is_decided_at_planning(demo_dir: Path) -> None:
    rules = {"contact": {"where": "source in [crm]"}}
    async with Hub.from_config(governed(demo_dir, {"bot": {"entities": rules}})) as hub:
        plan = await hub.explain("contact", consumer="bot")
        seen = await records(hub, "contact", consumer="bot")
    read = {s["source"]: s["read"] for s in plan["sources"]}
    assert read == {"erp": False, "crm": True}
    assert seen and {r.source for r in seen} == {"crm"}


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"status": "paid"},
        {"total__amount__gte": "1000"},
        {"order_by": "-issued_on"},
        {"since": "2023-06-01T00:00:00+00:00"},
    ],
)
async def test_push_down_never_changes_results_under_a_row_filter(
    demo_dir: Path, query: dict[str, Any]
) -> None:
    rules = {"invoice": {"where": "status != void and total.amount < 20000"}}
    config = load_config(governed(demo_dir, {"bot": {"entities": rules}}))
    results = []
    for pushdown in (True, False):
        async with Hub(config, pushdown=pushdown) as hub:
            try:
                results.append(
                    [
                        record_to_json(r)
                        for r in await records(hub, "invoice", consumer="bot", **query)
                    ]
                )
            except Exception as exc:  # the same refusal either way
                results.append([type(exc).__name__])
    assert results[0] == results[1]
    if "order_by" not in query:
        assert results[0]


async def test_a_row_filter_is_pushed_down_where_it_can_be(demo_dir: Path) -> None:
    rules = {"contact": {"where": {"company_id__in": ["erp:10002", "erp:10003", "crm:1"]}}}
    config = load_config(governed(demo_dir, {"bot": {"entities": rules}}))
    async with Hub(config) as hub:
        plan = await hub.explain("contact", consumer="bot")
        pushed = await records(hub, "contact", consumer="bot")
    async with Hub(config, pushdown=False) as hub:
        in_memory = await records(hub, "contact", consumer="bot")
    erp = next(s for s in plan["sources"] if s["source"] == "erp")
    assert erp["pushed_down"] == [
        {"path": "CUST_NO", "op": "in", "value": ["10002", "10003"], "case_insensitive": False}
    ]
    assert [r.id for r in pushed] == [r.id for r in in_memory] == ["erp:10002", "erp:10003"]


async def test_a_bound_tenant(demo_dir: Path) -> None:
    rules = {"contact": {}}
    async with Hub.from_config(
        governed(demo_dir, {"bot": {"tenant": "acme", "entities": rules}})
    ) as hub:
        with pytest.raises(AccessDenied, match="tenant 'globex'"):
            await records(hub, "contact", consumer="bot", tenant="globex")
        with pytest.raises(AccessDenied, match="tenant"):
            await hub.get("contact", "erp:10002", consumer="bot", tenant="globex")
        assert (await hub.plan("contact", consumer="bot")).tenant == "acme"
        assert (await hub.plan("contact", consumer="bot", tenant="acme")).tenant == "acme"
        assert await records(hub, "contact", consumer="bot", tenant="acme")
        # Unbound consumers choose.
        assert (await hub.plan("contact", tenant="globex")).tenant == "globex"


async def test_the_catalog_shows_what_the_consumer_may_see(demo_dir: Path) -> None:
    async with Hub.from_config(governed(demo_dir, {"bot": BOT})) as hub:
        views = {v.name: v for v in hub.catalog("bot")}
        everything = {v.name for v in hub.catalog()}
        seen = await records(hub, "contact", consumer="bot")
    assert set(views) == {"contact", "invoice"}  # no source serves ticket in the demo
    assert everything == {"company", "contact", "invoice", "order", "product"}
    contact = views["contact"]
    assert contact.operations == ("query", "get")
    assert views["invoice"].operations == ("get",)
    fields = {f.name: f for f in contact.fields}
    assert set(fields) == {"id", "source", "first_name", "last_name", "email", "company_id"}
    assert fields["email"].masked == "partial" and not fields["email"].filterable
    assert not fields["email"].sortable
    assert fields["first_name"].masked is None and fields["first_name"].filterable
    assert fields["email"].kind == "email"
    schema = contact.json_schema
    assert set(schema["properties"]) == set(fields)
    assert not schema.get("required")
    assert "crm" in contact.description and "erp" in contact.description
    for record in seen:
        jsonschema.validate(record_to_json(record), schema)


def test_the_sync_facade_has_the_catalog_too(demo_dir: Path) -> None:
    with SyncHub.from_config(governed(demo_dir, {"bot": BOT})) as hub:
        assert {v.name for v in hub.catalog("bot")} == {"contact", "invoice"}
        assert [r.id for r in hub.query("contact", consumer="bot", limit=2)]


async def test_the_catalog_schema_of_a_trusted_consumer_has_every_field_optional(
    demo_dir: Path,
) -> None:
    async with Hub.from_config(governed(demo_dir, {})) as hub:
        views = {v.name: v for v in hub.catalog("local")}
        invoices = await records(hub, "invoice")
    schema = views["invoice"].json_schema
    assert not schema.get("required")
    assert {"id", "number", "lines", "total", "raw"} <= set(schema["properties"])
    for record in invoices[:20]:
        jsonschema.validate(record_to_json(record), schema)
    sortable = {f.name for f in views["invoice"].fields if f.sortable}
    assert "issued_on" not in sortable  # mapped through a date transform: cannot be ordered
    assert all(isinstance(r, Record) for r in invoices)


async def test_the_readme_example(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = yaml.safe_load(README_EXAMPLE)
    monkeypatch.setenv("PATCHBAY_SECRET_KEY", "readme-example-secret-key-0123456789")
    path = governed(demo_dir, example["consumers"], secret_key=example["secret_key"])
    async with Hub.from_config(path) as hub:
        views = {v.name: v for v in hub.catalog("support-bot")}
        assert set(views) == {"contact"}  # no source of the demo serves tickets
        bot = await records(hub, "contact", consumer="support-bot")
        assert bot and all(r.email is None or "***@" in r.email for r in bot)
        assert {r.source for r in bot} == {"crm"}
        assert (await hub.plan("contact", consumer="support-bot")).tenant == "acme"
        finance = await records(hub, "invoice", consumer="finance-assistant")
        assert finance and all(r.customer_id.startswith("hash:") for r in finance)
        assert all(r.status not in (None, "void") for r in finance)
        assert all(line.description in (None, "[redacted]") for r in finance for line in r.lines)
