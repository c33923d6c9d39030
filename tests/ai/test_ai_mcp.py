"""The MCP server with the official SDK's client: ``patchbay mcp`` as a subprocess over stdio,
and the MCP endpoint of the running gateway over streamable HTTP (an API key, refused
without one)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ai_support
import httpx
import httpx2
import mcp_types
import pytest
from ai_support import CLEAR_EMAIL, INJECTED_ID, INJECTION, MASKED_EMAIL
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from servers import Server

from patchbay.config import load_config
from patchbay.gateway import create_app
from patchbay.hub import Hub

# The shared fixtures (tests/ai/ai_support.py: a conftest.py here would shadow the root one).
ai_config = ai_support.ai_config


def patchbay_command() -> list[str]:
    """The installed ``patchbay`` script next to this Python (what an MCP host runs)."""
    script = Path(sys.executable).parent / "patchbay"
    return [str(script)] if script.exists() else [sys.executable, "-m", "patchbay.cli"]


@asynccontextmanager
async def stdio_session(config: Path, consumer: str) -> AsyncIterator[ClientSession]:
    command, *args = patchbay_command()
    params = StdioServerParameters(
        command=command,
        args=[*args, "mcp", "--config", str(config), "--consumer", consumer],
        cwd=str(config.parent),
        env={"PATH": os.environ.get("PATH", "")},
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def payload(result: mcp_types.CallToolResult) -> dict[str, Any]:
    block = result.content[0]
    assert isinstance(block, mcp_types.TextContent)
    data: dict[str, Any] = json.loads(block.text)
    assert result.structured_content == data
    return data


async def exercise(session: ClientSession) -> None:
    """What both transports must do for the ``finance`` consumer."""
    tools = await session.list_tools()
    names = [tool.name for tool in tools.tools]
    assert names == [
        "list_entities",
        "search_company",
        "get_company",
        "search_contact",
        "get_contact",
        "search_invoice",
        "get_invoice",
    ]
    search = next(t for t in tools.tools if t.name == "search_contact")
    assert "email__contains" in search.input_schema["properties"]
    resources = await session.list_resources()
    uris = [str(r.uri) for r in resources.resources]
    assert uris == [
        "patchbay://entities",
        "patchbay://entities/company/schema",
        "patchbay://entities/contact/schema",
        "patchbay://entities/invoice/schema",
    ]
    templates = await session.list_resource_templates()
    assert [t.uri_template for t in templates.resource_templates] == [
        "patchbay://entities/{entity}/schema"
    ]
    catalog = await session.read_resource("patchbay://entities")
    block = catalog.contents[0]
    assert isinstance(block, mcp_types.TextResourceContents)
    assert [e["name"] for e in json.loads(block.text)["entities"]] == [
        "company",
        "contact",
        "invoice",
    ]
    schema = await session.read_resource("patchbay://entities/invoice/schema")
    schema_block = schema.contents[0]
    assert isinstance(schema_block, mcp_types.TextResourceContents)
    assert "balance" in json.loads(schema_block.text)["properties"]

    found = await session.call_tool(
        "search_contact", {"email__contains": "dupont-logistics", "source": "erp"}
    )
    assert not found.is_error
    data = payload(found)
    assert [r["id"] for r in data["untrusted_records"]] == ["erp:10001"]
    assert data["untrusted_records"][0]["email"] == CLEAR_EMAIL
    invoice = await session.call_tool("get_invoice", {"id": "erp:500001"})
    (record,) = payload(invoice)["untrusted_records"]
    assert record["customer_id"] == "erp:10002"
    assert record["total"] == {"amount": "20042.37", "currency": "EUR"}
    assert record["status"] == "paid" and record["issued_on"] == "2014-09-19"
    assert record["lines"][0]["sku"] == "AX-1025"

    # Errors are tool errors; the server goes on answering.
    wrong = await session.call_tool("search_contact", {"emial": "x"})
    assert wrong.is_error and "did you mean 'email'" in payload(wrong)["message"]
    refused = await session.call_tool("search_order", {})
    assert refused.is_error and payload(refused)["error"] == "access_denied"
    injected = await session.call_tool("get_company", {"id": INJECTED_ID})
    assert payload(injected)["untrusted_records"][0]["name"] == INJECTION
    assert not (await session.call_tool("list_entities", {})).is_error


async def test_patchbay_mcp_over_stdio(ai_config: Path) -> None:
    async with stdio_session(ai_config, "finance") as session:
        await exercise(session)


async def test_stdio_applies_the_consumers_policy(ai_config: Path) -> None:
    async with stdio_session(ai_config, "support_bot") as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        assert not any("invoice" in name for name in names)
        refused = await session.call_tool("get_invoice", {"id": "erp:500001"})
        assert refused.is_error and payload(refused)["error"] == "access_denied"
        contact = await session.call_tool("get_contact", {"id": "erp:10001"})
        (record,) = payload(contact)["untrusted_records"]
        assert record["email"] == MASKED_EMAIL and "phone" not in record
        listing = await session.call_tool("search_contact", {"limit": 100})
        assert CLEAR_EMAIL not in json.dumps(payload(listing))


def test_an_unknown_consumer_is_refused_before_serving(ai_config: Path) -> None:
    import subprocess

    result = subprocess.run(
        [*patchbay_command(), "mcp", "--config", str(ai_config), "--consumer", "nobody"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 6
    assert "unknown consumer 'nobody'" in result.stderr
    assert result.stdout == ""  # stdout belongs to the protocol


# --- streamable HTTP in the gateway -----------------------------------------------------------


@dataclass
class Gateway:
    url: str
    hub: Hub
    tokens: dict[str, str]


@pytest.fixture
def gateway(ai_config: Path) -> Iterator[Gateway]:
    hub = Hub(load_config(ai_config))
    app = create_app(hub, close_hub=True)
    assert any(getattr(route, "path", None) == "/mcp" for route in app.routes)  # the factory's
    keys = app.state.gateway.keys
    tokens = {
        "finance": keys.create("finance", "mcp test")[1],
        "finance_invoices_only": keys.create("finance", "narrow", scopes=["read:invoice"])[1],
    }
    with Server(app) as server:
        yield Gateway(server.url, hub, tokens)


@asynccontextmanager
async def http_session(url: str, token: str) -> AsyncIterator[ClientSession]:
    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with (
        client,
        streamable_http_client(f"{url}/mcp", http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def test_mcp_over_streamable_http_in_the_gateway(gateway: Gateway) -> None:
    async with http_session(gateway.url, gateway.tokens["finance"]) as session:
        await exercise(session)
    gateway.hub.audit.flush(10)
    from patchbay.core.audit import read_audit

    vias = {(e.via, e.consumer) for e in read_audit(gateway.hub.state_engine, consumer="finance")}
    assert ("mcp", "finance") in vias


async def test_scopes_of_the_key_narrow_the_tools(gateway: Gateway) -> None:
    async with http_session(gateway.url, gateway.tokens["finance_invoices_only"]) as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        assert names == ["list_entities", "search_invoice", "get_invoice"]
        refused = await session.call_tool("search_contact", {})
        assert refused.is_error and "read:contact" in payload(refused)["message"]


def test_mcp_without_a_key_is_refused(gateway: Gateway) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    headers = {"Accept": "application/json, text/event-stream"}
    for extra in ({}, {"Authorization": "Bearer pb_wrong_key"}):
        response = httpx.post(
            f"{gateway.url}/mcp", json=initialize, headers={**headers, **extra}, timeout=30
        )
        assert response.status_code == 401, response.text
        assert "untrusted_records" not in response.text
    allowed = httpx.post(
        f"{gateway.url}/mcp",
        json=initialize,
        headers={**headers, "Authorization": f"Bearer {gateway.tokens['finance']}"},
        timeout=30,
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["result"]["serverInfo"]["name"] == "patchbay"


async def test_the_sdk_client_without_a_key_gets_nothing(gateway: Gateway) -> None:
    client = httpx2.AsyncClient(timeout=30)
    with pytest.raises(ExceptionGroup) as raised:
        async with (
            client,
            streamable_http_client(f"{gateway.url}/mcp", http_client=client) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
    # The SDK reports the 401 (checked above on the wire) as an error response.
    assert raised.group_contains(MCPError, match="error response", depth=2)
