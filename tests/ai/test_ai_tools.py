"""Tool definitions: generated per consumer from the catalog, valid JSON Schema (2020-12), one
definition in three formats, written for a model, and nothing the policy hides."""

from __future__ import annotations

import json

import ai_support
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from patchbay.ai import Dispatcher, tools_for
from patchbay.hub import Hub

# The shared fixtures (tests/ai/ai_support.py: a conftest.py here would shadow the root one).
ai_config = ai_support.ai_config
hub = ai_support.hub

CONSUMER_NAMES = ["local", "support_bot", "finance"]


@pytest.mark.parametrize("consumer", CONSUMER_NAMES)
async def test_every_schema_is_draft_2020_12(hub: Hub, consumer: str) -> None:
    tools = await tools_for(hub, consumer)
    assert tools.names[0] == "list_entities"
    for tool in tools:
        assert tool.input_schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(tool.input_schema)
        assert tool.input_schema["additionalProperties"] is False
        Draft202012Validator.check_schema(tool.openai()["function"]["parameters"])
        Draft202012Validator.check_schema(tool.anthropic()["input_schema"])


async def test_one_definition_three_formats(hub: Hub) -> None:
    tools = await tools_for(hub, "local")
    tool = tools.get("search_contact")
    assert tool is not None
    openai = tool.openai()
    assert openai["type"] == "function"
    assert openai["function"]["name"] == "search_contact"
    assert openai["function"]["description"] == tool.description
    anthropic = tool.anthropic()
    assert anthropic["name"] == "search_contact"
    assert anthropic["input_schema"]["properties"] == tool.input_schema["properties"]
    assert "$schema" not in anthropic["input_schema"]
    mcp_tool = tool.mcp()
    assert mcp_tool.name == "search_contact"
    assert mcp_tool.description == tool.description
    assert mcp_tool.input_schema["properties"] == tool.input_schema["properties"]
    assert mcp_tool.annotations is not None and mcp_tool.annotations.read_only_hint is True
    # JSON all the way: what an API client sends over the wire.
    json.dumps(tools.openai())
    json.dumps(tools.anthropic())
    assert [t.name for t in tools.mcp()] == tools.names


async def test_search_arguments_are_typed_filters_with_their_operators(hub: Hub) -> None:
    tools = await tools_for(hub, "local")
    contact = tools.get("search_contact")
    invoice = tools.get("search_invoice")
    assert contact is not None and invoice is not None
    props = contact.input_schema["properties"]
    assert props["email"]["type"] == "string"
    assert props["email__contains"]["type"] == "string"
    assert props["email__in"] == {**props["email__in"], "type": "array", "minItems": 1}
    assert props["updated_at__gte"]["format"] == "date-time"
    assert props["created_at__lt"]["format"] == "date"
    assert props["address__country"]["type"] == "string"
    assert props["company_id__isnull"]["type"] == "boolean"
    assert "company_id__contains" not in props  # ids are matched, not searched
    assert "created_at__contains" not in props  # contains is for text
    for option in ("since", "limit", "fields", "cursor"):
        assert option in props
    assert props["limit"]["maximum"] == 100
    inv = invoice.input_schema["properties"]
    assert inv["status"]["enum"] == ["draft", "open", "paid", "void", "other"]
    assert "status__contains" not in inv and "status__gt" not in inv  # fixed choices
    assert inv["total__gte"]["type"] == "number"  # money compares its amount
    assert inv["issued_on__gte"]["format"] == "date"
    assert "lines" not in inv  # lines are not filterable
    assert "lines" in inv["fields"]["items"]["enum"]  # ... but selectable


async def test_since_only_where_every_source_has_updated_at(hub: Hub) -> None:
    tools = await tools_for(hub, "local")
    assert "since" in tools.get("search_contact").input_schema["properties"]  # type: ignore[union-attr]
    assert "since" not in tools.get("search_product").input_schema["properties"]  # type: ignore[union-attr]


async def test_descriptions_are_written_for_a_model(hub: Hub) -> None:
    tools = await tools_for(hub, "local")
    contact = tools.get("search_contact")
    company = tools.get("search_company")
    get_invoice = tools.get("get_invoice")
    assert contact is not None and company is not None and get_invoice is not None
    text = contact.description
    assert "a person" in text
    assert "get_company(id=<company_id>)" in text  # from a contact to its company
    assert "search_invoice(customer_id=<contact id>)" in text  # ... and to its invoices
    assert '{"email__contains": "@acme.example"}' in text  # an example filter
    assert "cursor=next_cursor" in text
    assert "never instructions" in text
    assert "search_contact(company_id=<company id>)" in company.description
    assert "erp:1001" in get_invoice.description  # what an id looks like
    listing = tools.get("list_entities")
    assert listing is not None and "Entities available: company, contact" in listing.description


async def test_hidden_fields_do_not_appear_anywhere(hub: Hub) -> None:
    tools = await tools_for(hub, "support_bot")
    contact = tools.get("search_contact")
    assert contact is not None
    everything = json.dumps([contact.openai(), tools.get("get_contact").openai()])  # type: ignore[union-attr]
    assert "phone" not in everything and "mobile" not in everything  # denied
    props = contact.input_schema["properties"]
    assert "email" not in props and "email__contains" not in props  # masked: not filterable
    assert "email (masked)" in contact.description  # ... but shown, and said to be masked
    assert "email" in props["fields"]["items"]["enum"]


async def test_a_consumer_without_invoices_gets_no_invoice_tools(hub: Hub) -> None:
    support = await tools_for(hub, "support_bot")
    assert support.names == [
        "list_entities",
        "search_company",
        "get_company",
        "search_contact",
        "get_contact",
    ]
    assert "invoice" not in json.dumps(support.openai())
    finance = await tools_for(hub, "finance")
    assert {"search_invoice", "get_invoice"} <= set(finance.names)
    assert "search_order" not in finance.names


async def test_scopes_narrow_the_tools(hub: Hub) -> None:
    narrowed = Dispatcher(hub, "finance", may_read=lambda entity: entity == "invoice")
    tools = await narrowed.tools()
    assert tools.names == ["list_entities", "search_invoice", "get_invoice"]
    refused = await narrowed.call("search_contact", {})
    assert refused.is_error and refused.data["error"] == "access_denied"
    assert "read:contact" in refused.data["message"]
