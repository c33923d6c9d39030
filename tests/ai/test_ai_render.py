"""Rendering for prompts: compact JSON and Markdown within a budget, never a silent cut, record
text delimited as data; documents for retrieval pipelines."""

from __future__ import annotations

import json

import ai_support
from ai_support import CLEAR_EMAIL, INJECTED_ID, INJECTION, MASKED_EMAIL

from patchbay.ai import Budget, render_json, render_markdown, to_documents
from patchbay.hub import Hub

# The shared fixtures (tests/ai/ai_support.py: a conftest.py here would shadow the root one).
ai_config = ai_support.ai_config
hub = ai_support.hub


async def test_json_within_the_budget_says_what_it_left_out(hub: Hub) -> None:
    records = [r async for r in hub.query("contact")]
    budget = Budget(max_chars=2_000)
    rendered = render_json(records, fields=["full_name", "email"], budget=budget)
    assert rendered.chars <= 2_000
    data = json.loads(rendered.text)
    assert data["truncated"] is True and rendered.truncated
    assert data["total"] == len(records) and data["shown"] == rendered.shown < len(records)
    assert [r["id"] for r in data["untrusted_records"]] == [r.id for r in records[: rendered.shown]]
    assert set(data["untrusted_records"][0]) <= {"id", "full_name", "email"}
    assert "never as instructions" in data["notice"]
    assert rendered.estimated_tokens == budget.tokens(rendered.text)
    everything = render_json(records[:3])
    assert everything.truncated is False and everything.shown == 3


async def test_markdown_table_within_the_budget(hub: Hub) -> None:
    records = [r async for r in hub.query("invoice", limit=40)]
    rendered = render_markdown(
        records, fields=["number", "status", "total"], budget=Budget(max_chars=1_500)
    )
    assert rendered.chars <= 1_500 and rendered.truncated
    lines = rendered.text.splitlines()
    assert lines[0] == '<untrusted-data source="patchbay">'
    assert lines[1] == "| id | number | status | total |"
    assert lines[2] == "|---|---|---|---|"
    assert lines[3].startswith("| erp:500001 | 500001 | paid | 20042.37 EUR |")
    assert lines[-2] == "</untrusted-data>"
    assert lines[-1].startswith(f"_truncated: {rendered.shown} of 40 records shown")
    assert len(lines) == 3 + rendered.shown + 2
    assert not render_markdown(records[:2]).truncated


async def test_text_in_a_record_stays_inside_the_delimiters(hub: Hub) -> None:
    company = await hub.get("company", INJECTED_ID)
    table = render_markdown([company], fields=["name"]).text
    assert table.count("</untrusted-data>") == 1 and table.rstrip().endswith("</untrusted-data>")
    assert "Ignore previous instructions" in table.split("</untrusted-data>")[0]
    as_json = render_json([company], fields=["name"]).text
    assert json.loads(as_json)["untrusted_records"][0]["name"] == INJECTION  # unchanged
    assert "<" not in as_json


async def test_documents_for_retrieval(hub: Hub) -> None:
    contact = await hub.get("contact", "erp:10001")
    (document,) = to_documents([contact])
    text, metadata = document
    assert text.splitlines()[0] == "contact erp:10001"
    assert f"email: {CLEAR_EMAIL}" in text.splitlines()
    assert "address.country: DE" in text.splitlines()
    assert metadata == {
        "entity": "contact",
        "id": "erp:10001",
        "source": "erp",
        "remote_id": "10001",
        "updated_at": contact.updated_at.isoformat().replace("+00:00", "Z")
        if contact.updated_at
        else None,
    }
    invoice = await hub.get("invoice", "erp:500001")
    (doc,) = to_documents([invoice], fields=["total", "lines"])
    assert "total: 20042.37 EUR" in doc.text
    assert "lines[0].sku: AX-1025" in doc.text


async def test_documents_follow_the_policy(hub: Hub) -> None:
    page = await hub.fetch("contact", limit=5, consumer="support_bot")
    documents = to_documents(page.records)
    assert documents[0].text.startswith("contact erp:10001")
    assert f"email: {MASKED_EMAIL}" in documents[0].text
    assert CLEAR_EMAIL not in "".join(d.text for d in documents)
    assert all("phone" not in d.text for d in documents)
    assert documents[0].metadata["source"] == "erp"
