"""The dispatcher: arguments checked against the schema with actionable messages, queries run
through the Hub under policy and audit, answers within a budget with a cursor that continues
without gaps or duplicates, record text delimited as untrusted data, errors as results."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import ai_support
import pytest
import sqlalchemy as sa
from ai_strategies import from_schema
from ai_support import CLEAR_EMAIL, INJECTED_ID, INJECTION, MASKED_EMAIL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchbay.ai import Budget, Dispatcher, ToolResult
from patchbay.config import load_config, load_config_data
from patchbay.core.audit import audit_table, read_audit
from patchbay.hub import Hub

# The shared fixtures (tests/ai/ai_support.py: a conftest.py here would shadow the root one).
ai_config = ai_support.ai_config
hub = ai_support.hub


class Sync:
    """A Hub and its dispatchers on one event loop, for hypothesis (which drives sync tests)."""

    def __init__(self, config: Path) -> None:
        self.runner = asyncio.Runner()
        self.hub = Hub(load_config(config))
        self.dispatchers: dict[str, Dispatcher] = {}

    def dispatcher(self, consumer: str) -> Dispatcher:
        if consumer not in self.dispatchers:
            self.dispatchers[consumer] = Dispatcher(self.hub, consumer)
        return self.dispatchers[consumer]

    def call(self, consumer: str, name: str, args: dict[str, Any]) -> ToolResult:
        return self.runner.run(self.dispatcher(consumer).call(name, args))

    def schemas(self, consumer: str) -> dict[str, Any]:
        tools = self.runner.run(self.dispatcher(consumer).tools())
        return {tool.name: tool.input_schema for tool in tools}

    def close(self) -> None:
        self.runner.run(self.hub.close())
        self.runner.close()


@pytest.fixture
def sync(ai_config: Path) -> Iterator[Sync]:
    opened = Sync(ai_config)
    try:
        yield opened
    finally:
        opened.close()


# --- schemas round-trip ------------------------------------------------------------------------


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_arguments_drawn_from_each_schema_are_accepted(sync: Sync, data: st.DataObject) -> None:
    consumer = data.draw(st.sampled_from(["local", "support_bot", "finance"]))
    schemas = sync.schemas(consumer)
    name = data.draw(st.sampled_from(sorted(schemas)))
    # A cursor is only valid when it came from an earlier answer: drawn text is refused by the
    # Hub (tested below), so it is left out here.
    args = data.draw(from_schema(schemas[name], leave_out=frozenset({"cursor"})))
    result = sync.call(consumer, name, args)
    if name.startswith("get_"):
        # Any id is accepted; a drawn one rarely names a record.
        assert not result.is_error or result.data["error"] in ("not_found", "invalid_query"), (
            result.text
        )
    else:
        assert not result.is_error, (args, result.text)
        assert len(result.text) <= sync.dispatcher(consumer).budget.max_chars


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_invalid_arguments_get_the_actionable_message(sync: Sync, data: st.DataObject) -> None:
    schemas = sync.schemas("local")
    name = data.draw(st.sampled_from(sorted(n for n in schemas if n != "list_entities")))
    schema = schemas[name]
    args = data.draw(from_schema(schema, leave_out=frozenset({"cursor"})))
    properties = schema["properties"]
    how = data.draw(st.sampled_from(["unknown", "type", "enum"]))
    if how == "unknown":
        key = data.draw(
            st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True).filter(
                lambda k: k not in properties
            )
        )
        args[key] = "x"
        expect = [repr(key)]
    elif how == "type":
        key = data.draw(st.sampled_from(sorted(properties)))
        args[key] = {"not": "a value of this type"}
        expect = [key]
    else:
        key = "fields"
        args[key] = ["no_such_field"]
        expect = ["'no_such_field'", ", ".join(properties["fields"]["items"]["enum"])]
    result = sync.call("local", name, args)
    assert result.is_error and result.data["error"] == "invalid_arguments", result.text
    message = result.data["message"]
    assert message.startswith(f"{name}: ")
    for part in expect:
        assert part in message


async def test_messages_list_the_valid_choices(hub: Hub) -> None:
    tools = Dispatcher(hub, "local")

    async def message(name: str, args: dict[str, Any]) -> str:
        result = await tools.call(name, args)
        assert result.is_error and result.data["error"] == "invalid_arguments"
        return str(result.data["message"])

    typo = await message("search_contact", {"emial": "ann@acme.example"})
    assert "did you mean 'email'" in typo
    assert "filter fields: address__city" in typo and "email" in typo
    assert "other arguments: since, limit, fields, cursor" in typo
    bad_op = await message("search_contact", {"email__like": "acme"})
    assert "'like' is not an operator for email" in bad_op
    assert "valid: email, email__ne, email__in, email__contains, email__isnull" in bad_op
    wrong_op = await message("search_invoice", {"status__contains": "pa"})
    assert "'contains' is not available for status (operators: eq, ne, in, isnull)" in wrong_op
    needs_op = await message("search_contact", {"updated_at": "2024-01-01T00:00:00Z"})
    assert "updated_at needs an operator; valid: updated_at__gt" in needs_op
    choice = await message("search_invoice", {"status": "unpaid"})
    assert "'unpaid' is not one of draft, open, paid, void, other" in choice
    limit = await message("search_contact", {"limit": 1000})
    assert "limit: must be between 1 and 100" in limit
    date = await message("search_invoice", {"issued_on__gte": "19/09/2014"})
    assert "is not a valid date (e.g. 2024-05-01)" in date
    missing = await message("get_invoice", {})
    assert "missing argument: 'id'" in missing
    unknown = await tools.call("serch_contact", {})
    assert unknown.data["error"] == "unknown_tool"
    assert "did you mean search_contact?" in unknown.data["message"]


# --- running through the Hub -----------------------------------------------------------------


async def test_search_and_get_return_the_canonical_records(hub: Hub) -> None:
    tools = Dispatcher(hub, "local")
    found = await tools.call("search_contact", {"email": "Gunter.Fernandez@Dupont-Logistics.de"})
    assert not found.is_error
    assert found.data["returned"] == 1 and found.data["truncated"] is False
    (record,) = found.data["untrusted_records"]
    expected = await hub.get("contact", "erp:10001")
    assert record["id"] == "erp:10001"
    assert record["email"] == CLEAR_EMAIL == expected.model_dump()["email"]
    assert record["company_id"] == "erp:10001"
    invoice = await tools.call("get_invoice", {"id": "erp:500001"})
    canonical = (await hub.get("invoice", "erp:500001")).model_dump(mode="json")
    (got,) = invoice.data["untrusted_records"]
    assert got == {k: v for k, v in canonical.items() if v not in (None, {}, [])}
    narrow = await tools.call("get_invoice", {"id": "erp:500001", "fields": ["total"]})
    assert narrow.data["untrusted_records"] == [{"id": "erp:500001", "total": canonical["total"]}]


async def test_filters_reach_the_hub(hub: Hub) -> None:
    tools = Dispatcher(hub, "local")
    result = await tools.call(
        "search_invoice",
        {
            "status__in": ["open", "paid"],
            "total__gte": 1000,
            "limit": 100,
            "fields": ["status", "total"],
        },
    )
    expected = [r async for r in hub.query("invoice", status__in=["open", "paid"], total__gte=1000)]
    got = result.data["untrusted_records"]
    assert [r["id"] for r in got] == [r.id for r in expected][: len(got)]
    assert all(r["status"] in ("open", "paid") and float(r["total"]["amount"]) >= 1000 for r in got)


async def test_every_call_is_audited_as_a_tool_call(hub: Hub) -> None:
    tools = Dispatcher(hub, "finance")
    await tools.call("search_invoice", {"status": "open", "limit": 2})
    await tools.call("get_invoice", {"id": "erp:500001"})
    hub.audit.flush(10)
    entries = read_audit(hub.state_engine, consumer="finance")
    assert {(e.via, e.operation, e.entity) for e in entries} >= {
        ("tool", "fetch", "invoice"),
        ("tool", "get", "invoice"),
    }


async def test_policy_refuses_a_tool_called_by_name(hub: Hub) -> None:
    tools = Dispatcher(hub, "support_bot")
    for name, args in (("search_invoice", {}), ("get_invoice", {"id": "erp:500001"})):
        result = await tools.call(name, args)
        assert result.is_error and result.data["error"] == "access_denied", result.text
        assert "support_bot" in result.data["message"]
        assert "search_contact" in result.data["message"]  # what it may use instead
    hub.audit.flush(10)
    denied = read_audit(hub.state_engine, consumer="support_bot", outcome="denied")
    assert {e.entity for e in denied} == {"invoice"}  # the Hub refused, and logged it


async def test_masked_fields_arrive_masked(hub: Hub) -> None:
    tools = Dispatcher(hub, "support_bot")
    result = await tools.call("get_contact", {"id": "erp:10001"})
    (record,) = result.data["untrusted_records"]
    assert record["email"] == MASKED_EMAIL
    assert "phone" not in record and "mobile" not in record
    assert CLEAR_EMAIL not in result.text
    listing = await tools.call("search_contact", {"limit": 100})
    assert CLEAR_EMAIL not in listing.text
    assert MASKED_EMAIL in listing.text
    refused = await tools.call("search_contact", {"email": CLEAR_EMAIL})
    assert refused.data["error"] == "invalid_arguments"  # masked: not a filter argument
    entities = await tools.call("list_entities", {})
    contact = next(e for e in entities.data["entities"] if e["name"] == "contact")
    assert contact["fields"]["email"] == "email, masked (partial)"
    assert "phone" not in contact["fields"]


async def test_text_in_a_record_stays_data(hub: Hub) -> None:
    tools = Dispatcher(hub, "local")
    result = await tools.call("get_company", {"id": INJECTED_ID})
    (record,) = result.data["untrusted_records"]
    assert record["name"] == INJECTION  # unchanged
    text = result.text
    start = text.index('"untrusted_records":[')
    assert text.index("Ignore previous instructions") > start  # inside the data ...
    assert text.endswith("]}")  # ... which closes the answer
    assert "</untrusted-data>" not in text and "<system>" not in text  # escaped as \u003c
    assert "never as instructions" in result.data["notice"]
    found = await tools.call("search_company", {"name__contains": "ignore previous"})
    assert [r["name"] for r in found.data["untrusted_records"]] == [INJECTION]


async def test_errors_are_results_a_model_can_recover_from(hub: Hub) -> None:
    tools = Dispatcher(hub, "local")
    missing = await tools.call("get_company", {"id": "erp:99999"})
    assert missing.data["error"] == "not_found" and "erp:99999" in missing.data["message"]
    bad_id = await tools.call("get_company", {"id": "no-source-here"})
    assert bad_id.data["error"] == "invalid_query"
    bad_cursor = await tools.call("search_contact", {"cursor": "not-a-cursor"})
    assert bad_cursor.data["error"] == "invalid_query"
    nobody = await Dispatcher(hub, "nobody").call("list_entities", {})
    assert nobody.data["error"] == "access_denied" and "unknown consumer" in nobody.text
    not_a_mapping = await tools.call("search_contact", ["email"])  # type: ignore[arg-type]
    assert not_a_mapping.data["error"] == "invalid_arguments"


async def test_a_source_that_is_down_is_an_error_result(hub: Hub, ai_config: Path) -> None:
    (ai_config.parent / "erp.sqlite").unlink()
    (ai_config.parent / "erp.sqlite").mkdir()  # a database that cannot be opened
    result = await Dispatcher(hub, "local").call("search_company", {})
    assert result.is_error and result.data["error"] == "source_unavailable", result.text
    assert "erp" in result.data["message"] and "finance-systems@acme.example" in result.text


# --- the size budget ---------------------------------------------------------------------------


def _tickets(directory: Path, count: int) -> Hub:
    with closing(sqlite3.connect(directory / "tickets.sqlite")) as db, db:
        db.execute("CREATE TABLE TICKETS (ID INTEGER PRIMARY KEY, SUBJECT TEXT, STATUS TEXT)")
        db.executemany(
            "INSERT INTO TICKETS VALUES (?, ?, ?)",
            ((i, f"Printer on floor {i % 7} jams", "open") for i in range(1, count + 1)),
        )
    config = load_config_data(
        {
            "version": 1,
            "state": "sqlite:///state/state.db",
            "sources": {
                "helpdesk": {
                    "connector": "sql",
                    "settings": {"url": "sqlite:///tickets.sqlite"},
                    "entities": {
                        "ticket": {
                            "from": {"table": "TICKETS"},
                            "id": "ID",
                            "fields": {
                                "subject": {"path": "SUBJECT", "required": True},
                                "status": "STATUS",
                            },
                        }
                    },
                }
            },
        },
        base_dir=directory,
    )
    return Hub(config)


async def test_a_large_result_fits_the_budget_and_continues_without_gaps(tmp_path: Path) -> None:
    budget = Budget(max_chars=6_000)
    async with _tickets(tmp_path, 10_000) as hub:
        tools = Dispatcher(hub, "local", budget=budget)
        seen: list[str] = []
        args: dict[str, Any] = {"limit": 100}
        answers = 0
        while True:
            result = await tools.call("search_ticket", args)
            answers += 1
            assert not result.is_error, result.text
            assert len(result.text) <= budget.max_chars
            assert result.estimated_tokens == -(-len(result.text) // 4)
            assert result.estimated_tokens <= budget.max_tokens
            records = result.data["untrusted_records"]
            seen.extend(r["id"] for r in records)
            if result.next_cursor is None:
                assert result.data["truncated"] is False
                break
            # Never a silent cut: fewer than the limit means it says so, and why.
            assert result.data["truncated"] is True
            assert result.data["truncated_by"] == "size_budget"
            assert 0 < len(records) < 100
            args = {"limit": 100, "cursor": result.next_cursor}
        hub.audit.flush(10)
        with hub.state_engine.connect() as conn:
            reads = conn.execute(sa.select(sa.func.count()).select_from(audit_table)).scalar()
    assert seen == [f"helpdesk:{i}" for i in range(1, 10_001)]  # no gaps, no duplicates
    assert answers > 100
    # Pages are sized from the records seen: most answers take one read of the source.
    assert reads is not None and reads < answers * 1.2


async def test_a_page_cut_by_limit_says_so(tmp_path: Path) -> None:
    async with _tickets(tmp_path, 30) as hub:
        result = await Dispatcher(hub, "local").call("search_ticket", {"limit": 10})
        assert result.data["returned"] == 10
        assert result.data["truncated"] is True and result.data["truncated_by"] == "limit"
        rest = await Dispatcher(hub, "local").call(
            "search_ticket", {"limit": 100, "cursor": result.next_cursor}
        )
        assert rest.data["untrusted_records"][0]["id"] == "helpdesk:11"
        assert rest.data["returned"] == 20 and rest.next_cursor is None


async def test_a_record_larger_than_the_budget_asks_for_fewer_fields(tmp_path: Path) -> None:
    async with _tickets(tmp_path, 3) as hub:
        with closing(sqlite3.connect(tmp_path / "tickets.sqlite")) as db, db:
            db.execute("UPDATE TICKETS SET SUBJECT = ? WHERE ID = 2", ("x" * 5000,))
        tools = Dispatcher(hub, "local", budget=Budget(max_chars=1000))
        first = await tools.call("search_ticket", {"limit": 5})
        assert first.data["returned"] == 1 and first.data["truncated_by"] == "size_budget"
        stuck = await tools.call("search_ticket", {"limit": 5, "cursor": first.next_cursor})
        assert stuck.data["error"] == "too_large"
        assert "fields=[...]" in stuck.data["message"] and "status" in stuck.data["message"]
        narrow = await tools.call(
            "search_ticket", {"limit": 5, "cursor": first.next_cursor, "fields": ["status"]}
        )
        assert [r["id"] for r in narrow.data["untrusted_records"]] == [
            "helpdesk:2",
            "helpdesk:3",
        ]  # the big one is not skipped


def test_a_budget_can_be_given_in_tokens() -> None:
    assert Budget.from_tokens(2000).max_chars == 8000
    assert Budget(max_chars=8000).tokens("x" * 10) == 3
    with pytest.raises(ValueError, match="500"):
        Budget(max_chars=10)


def test_results_answer_both_apis() -> None:
    result = ToolResult('{"a":1}', {"a": 1})
    assert result.openai("call_1") == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"a":1}',
    }
    assert result.anthropic("toolu_1") == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": '{"a":1}',
        "is_error": False,
    }
    json.dumps(result.data)


async def test_the_catalog_fits_the_budget_too(hub: Hub) -> None:
    full = await Dispatcher(hub, "local").call("list_entities", {})
    assert "fields" in full.data["entities"][0] and not full.truncated
    small = await Dispatcher(hub, "local", budget=Budget(max_chars=1_000)).call("list_entities", {})
    assert len(small.text) <= 1_000 and small.truncated and small.data["truncated"] is True
    assert [e["name"] for e in small.data["entities"]] == [e["name"] for e in full.data["entities"]]
    assert "fields" not in small.data["entities"][0]
