"""The odoo connector against a handler app on 127.0.0.1 that follows Odoo's documented
JSON-RPC shapes (odoo_app.py): login, search_read with domains, keyset paging on (write_date,
id), lines in one extra call per batch, 200-with-error answers, bad input, and the conformance
kit for companies, contacts, sale orders and invoices."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from odoo_app import API_KEY, DATABASE, LOGIN, MODELS, MOVES, ORDERS, OdooState
from servers import Server

from patchbay import Hub
from patchbay.config import load_config, load_config_data
from patchbay.connectors.odoo import OdooConnector, domain_term
from patchbay.core.connector import SourceFilter
from patchbay.core.errors import ConfigError, SourceError, SourceUnavailable
from patchbay.core.filters import Op
from patchbay.testing import ConformanceCase, ConnectorConformance

ROOT = Path(__file__).resolve().parents[3]
OWNER = "erp-team@acme.example"
PARTNERS = MODELS["res.partner"]
COMPANIES = [p for p in PARTNERS if p["is_company"]]
PEOPLE = [p for p in PARTNERS if not p["is_company"]]
POSTED = [m for m in MOVES if m["move_type"] == "out_invoice" and m["state"] == "posted"]


def by_keyset(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["write_date"], r["id"]))


@pytest.fixture(scope="module")
def odoo() -> Iterator[tuple[Server, OdooState]]:
    state = OdooState()
    with Server(state.app()) as server:
        yield server, state


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, odoo: tuple[Server, OdooState]) -> None:
    monkeypatch.setenv("ODOO_API_KEY", API_KEY)
    odoo[1].mode = "normal"


def config(url: str, tmp_path: Path, entities: Any = "preset", **settings: Any
           ) -> dict[str, Any]:
    return {"version": 1, "state": f"sqlite:///{tmp_path / 'state.db'}",
            "sources": {"odoo": {
                "connector": "odoo", "owner": OWNER,
                "resilience": {"retry": {"attempts": 2, "backoff": 0.01}},
                "defaults": {"phone_region": "BE"},
                "settings": {"url": url, "database": DATABASE, "login": LOGIN,
                             "password": "env:ODOO_API_KEY", **settings},
                "entities": entities}}}


def hub_for(url: str, tmp_path: Path, entities: Any = "preset", *, pushdown: bool = True,
            **settings: Any) -> Hub:
    return Hub(load_config_data(config(url, tmp_path, entities, **settings), base_dir=tmp_path),
               pushdown=pushdown)


def searches(state: OdooState, model: str) -> list[dict[str, Any]]:
    return [c for c in state.calls if c.get("model") == model and c["method"] == "search_read"]


async def ids(hub: Hub, entity: str, **kwargs: Any) -> list[str]:
    return [r.id async for r in hub.query(entity, **kwargs)]


# --- reading ---------------------------------------------------------------------------------


async def test_login_once_then_keyset_pages_by_write_date_and_id(
    odoo: tuple[Server, OdooState], tmp_path: Path
) -> None:
    server, state = odoo
    async with hub_for(server.url, tmp_path, page_size=3) as hub:
        state.calls.clear()
        got = await ids(hub, "company")
        calls = list(state.calls)
    assert got == [f"odoo:{p['id']}" for p in by_keyset(COMPANIES)]
    assert [c["method"] for c in calls if "service" in c] == ["login"]
    reads = searches(state, "res.partner")
    assert [len(c["args"][0]) for c in reads][:1] == [1]  # the preset's domain alone
    first, second = reads[0], reads[1]
    assert first["kwargs"]["order"] == "write_date asc, id asc" and first["kwargs"]["limit"] == 3
    assert "offset" not in first["kwargs"]
    last = by_keyset(COMPANIES)[2]
    assert second["args"][0] == ["&", ["is_company", "=", True],
                                 "|", ["write_date", ">", last["write_date"]],
                                 "&", ["write_date", "=", last["write_date"]],
                                 ["id", ">", last["id"]]]


async def test_partners_become_companies_and_contacts(
    odoo: tuple[Server, OdooState], tmp_path: Path
) -> None:
    server, _ = odoo
    async with hub_for(server.url, tmp_path) as hub:
        company = await hub.get("company", "odoo:2")
        person = await hub.get("contact", "odoo:10")
        people = await ids(hub, "contact")
    assert company.model_dump(mode="json", include={
        "name", "tax_id", "email", "phone", "industry", "status", "address"}) == {
        "name": "Company 2", "tax_id": "BE0400000002", "email": "info@company2.example",
        "phone": "+3225550102", "industry": "Manufacturing", "status": "active",
        "address": {"line1": "Rue 2", "line2": None, "city": "Brussels", "region": "Brussels",
                    "postal_code": "1002", "country": "BE"}}
    assert (person.full_name, person.mobile, person.phone, person.company_id,
            person.company_name) == ("Person 10", "+447700900010", None, "odoo:3",
                             'O\'Brien & "Sons"')
    assert people == [f"odoo:{p['id']}" for p in by_keyset(PEOPLE)]


async def test_sale_orders_with_lines_in_one_call_per_batch(
    odoo: tuple[Server, OdooState], tmp_path: Path
) -> None:
    server, state = odoo
    async with hub_for(server.url, tmp_path, page_size=5) as hub:
        state.calls.clear()
        orders = [r async for r in hub.query("order")]
    assert [r.id for r in orders] == [f"odoo:{o['id']}" for o in by_keyset(ORDERS)]
    line_calls = searches(state, "sale.order.line")
    assert len(line_calls) == len(searches(state, "sale.order")) == 3  # 5 + 5 + 2 orders
    assert line_calls[0]["args"][0] == [
        "&", ["display_type", "=", False],
        ["order_id", "in", [o["id"] for o in by_keyset(ORDERS)[:5]]]]
    five = next(r for r in orders if r.id == "odoo:5")
    assert five.model_dump(mode="json", include={"number", "status", "customer_id",
                                                 "ordered_at", "total"}) == {
        "number": "S00005", "status": "draft", "customer_id": "odoo:6",
        "ordered_at": "2024-05-06", "total": {"amount": "175.0", "currency": "USD"}}
    assert [line.model_dump(mode="json", exclude_none=True) for line in five.lines] == [
        {"product_id": f"odoo:{n}", "description": f"Widget {n}", "quantity": f"{n}.0",
         "unit_price": {"amount": f"{12.5 * n}", "currency": "USD"},
         "total": {"amount": f"{12.5 * n * n}", "currency": "USD"}} for n in (1, 2, 3)]


async def test_only_posted_customer_invoices_with_product_lines(
    odoo: tuple[Server, OdooState], tmp_path: Path
) -> None:
    server, _ = odoo
    async with hub_for(server.url, tmp_path) as hub:
        invoices = [r async for r in hub.query("invoice")]
    assert [r.id for r in invoices] == [f"odoo:{m['id']}" for m in by_keyset(POSTED)]
    first = next(r for r in invoices if r.id == "odoo:3")
    assert (first.number, first.status, str(first.issued_on), str(first.due_on)) == (
        "INV/2024/00003", "paid", "2024-05-03", "2024-06-03")
    assert [(line.description, str(line.quantity)) for line in first.lines] == [
        ("Widget 1", "1.0"), ("Widget 2", "2.0")]


# --- push-down --------------------------------------------------------------------------------


def test_domains_are_json_values_never_built_text() -> None:
    def term(path: str, op: Op, value: Any, fold: bool = False) -> Any:
        return domain_term(SourceFilter(path, op, value, fold))

    tricky = "x') or (1=1"
    assert term("name", Op.EQ, tricky) == [["name", "=", tricky]]
    assert term("name", Op.NE, 'O\'Brien & "Sons"') == [["name", "!=", 'O\'Brien & "Sons"']]
    assert term("email", Op.CONTAINS, "acme", fold=True) == [["email", "ilike", "acme"]]
    assert term("partner_id.id", Op.EQ, "42") == [["partner_id", "=", 42]]
    assert term("partner_id.id", Op.EQ, "Acme") is None  # Odoo would search it as a name
    assert term("id", Op.IN, ("1", "2")) == [["id", "in", [1, 2]]]
    assert term("write_date", Op.GTE, datetime(2024, 1, 2, 3, 4, 5)) == [
        ["write_date", ">=", "2024-01-02 03:04:05"]]
    assert term("name", Op.GT, "M") is None  # collation order differs from Python's
    assert term("amount_total", Op.LT, 10) == [["amount_total", "<", 10]]
    assert term("parent_id.name", Op.EQ, "x") is None
    assert term("vat", Op.ISNULL, False) == [["vat", "!=", False]]


async def test_filters_become_domains_and_equal_the_in_memory_result(
    odoo: tuple[Server, OdooState], tmp_path: Path
) -> None:
    server, state = odoo
    where = {"name__in": ["Company 2", 'O\'Brien & "Sons"', "Company 7"],
             "email__contains": "COMPANY", "id__in": ["odoo:2", "odoo:3", "odoo:4"]}
    async with hub_for(server.url, tmp_path) as hub:
        state.calls.clear()
        pushed = await ids(hub, "company", **where)
        domain = searches(state, "res.partner")[0]["args"][0]
    async with hub_for(server.url, tmp_path, pushdown=False) as memory:
        reference = await ids(memory, "company", **where)
    assert pushed == reference == ["odoo:2", "odoo:3"]
    assert ["name", "in", ["Company 2", 'O\'Brien & "Sons"', "Company 7"]] in domain
    assert ["email", "ilike", "company"] in domain and ["id", "in", [2, 3, 4]] in domain


async def test_since_is_a_write_date_domain(odoo: tuple[Server, OdooState], tmp_path: Path
                                            ) -> None:
    server, state = odoo
    since = datetime(2024, 5, 2, 0, 0, tzinfo=UTC)
    async with hub_for(server.url, tmp_path) as hub:
        state.calls.clear()
        got = await ids(hub, "order", since=since)
        domain = searches(state, "sale.order")[0]["args"][0]
    assert got == [f"odoo:{o['id']}" for o in by_keyset(ORDERS) if o["write_date"] >=
                   "2024-05-02 00:00:00"]
    assert domain == [["write_date", ">=", "2024-05-01 10:00:00"]]  # 14 hours of margin


# --- bad input --------------------------------------------------------------------------------


async def test_a_wrong_password_is_one_clear_attempt_and_never_shown(
    odoo: tuple[Server, OdooState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    server, state = odoo
    monkeypatch.setenv("ODOO_API_KEY", "wr0ng-s3cret-key")
    caplog.set_level(logging.DEBUG)
    async with hub_for(server.url, tmp_path) as hub:
        state.calls.clear()
        with pytest.raises(SourceError) as info:
            await ids(hub, "company")
    message = str(info.value)
    assert not isinstance(info.value, SourceUnavailable)
    assert f"Odoo refused the login of {LOGIN!r} on database {DATABASE!r}" in message
    assert OWNER in message and "'odoo'" in message
    assert state.calls == [{"service": "common", "method": "login"}]
    assert "wr0ng-s3cret-key" not in message + caplog.text + repr(hub.config.sources["odoo"])


async def test_a_200_with_an_error_body_names_model_and_odoos_message(
    odoo: tuple[Server, OdooState], tmp_path: Path
) -> None:
    server, _ = odoo
    entities = {"company": {"from": {"model": "res.partner",
                                     "domain": [["is_company", "=", True]]},
                            "id": "id", "fields": {"name": "name"}},
                "product": {"from": {"model": "product.template"}, "id": "id",
                            "fields": {"name": "name"}}}
    async with hub_for(server.url, tmp_path, entities, database="other-db") as hub:
        with pytest.raises(SourceError) as info:
            await ids(hub, "company")
    message = str(info.value)
    assert 'common.login: Odoo answered an error: OperationalError: database ' \
           '"other-db" does not exist' in message
    assert API_KEY not in message and "Traceback" not in message
    async with hub_for(server.url, tmp_path, entities) as hub:
        with pytest.raises(SourceError, match=r"product\.template fields_get: Odoo answered an "
                                              r"error: KeyError: 'product\.template'"):
            await ids(hub, "product")


async def test_a_field_missing_from_the_model_is_named_before_reading(
    odoo: tuple[Server, OdooState], tmp_path: Path
) -> None:
    server, state = odoo
    entities = {"company": {"fields": {"legal_name": "x_legal_name"}}}  # the preset plus one
    async with hub_for(server.url, tmp_path, entities) as hub:
        state.calls.clear()
        with pytest.raises(SourceError, match=r"res\.partner has no field 'x_legal_name': fix "
                                              r"the mapping"):
            await ids(hub, "company")
    assert searches(state, "res.partner") == []


async def test_a_page_that_is_not_json_names_the_source(
    odoo: tuple[Server, OdooState], tmp_path: Path
) -> None:
    server, state = odoo
    state.mode = "html"
    async with hub_for(server.url, tmp_path) as hub:
        with pytest.raises(SourceError, match=r"common\.login: POST 127\.0\.0\.1:\d+/jsonrpc "
                                              r"answered text/html \(status 200\), "
                                              r"not JSON") as info:
            await ids(hub, "company")
    assert OWNER in str(info.value)


async def test_a_result_that_is_not_a_list_of_records_is_an_error(
    odoo: tuple[Server, OdooState], tmp_path: Path
) -> None:
    server, state = odoo
    state.mode = "not_a_list"
    async with hub_for(server.url, tmp_path) as hub:
        with pytest.raises(SourceError, match=r"res\.partner search_read: the result is not a "
                                              r"list of records"):
            await ids(hub, "company")


async def test_a_selector_that_matches_nothing_is_an_empty_result_said_once(
    odoo: tuple[Server, OdooState], tmp_path: Path
) -> None:
    server, state = odoo
    entities = {"company": {"from": {"model": "res.partner",
                                     "domain": [["name", "=", "No Such Company"]]}}}
    async with hub_for(server.url, tmp_path, entities) as hub:
        state.calls.clear()
        got = await ids(hub, "company")
    assert got == []
    assert len(searches(state, "res.partner")) == 1  # asked once, answered empty: no loop


async def test_a_server_ignoring_the_domain_stops_instead_of_looping(
    odoo: tuple[Server, OdooState], tmp_path: Path
) -> None:
    server, state = odoo
    state.mode = "ignore_domain"
    async with hub_for(server.url, tmp_path, page_size=2) as hub:
        state.calls.clear()
        with pytest.raises(SourceError, match="did not advance"):
            await ids(hub, "product")
    assert len(searches(state, "product.product")) == 2


def test_bad_from_blocks_fail_when_the_config_loads(tmp_path: Path) -> None:
    bad = {"company": {"from": {"model": "res.partner", "domain": [["name", "===", "x"]]}}}
    with pytest.raises(ConfigError, match=r"entities\.company\.from: domain: .*not a domain "
                                          r"term"):
        load_config_data(config("http://127.0.0.1:9", tmp_path, bad), base_dir=tmp_path)
    unbalanced = {"company": {"from": {"model": "res.partner", "domain": ["|", ["a", "=", 1]]}}}
    with pytest.raises(ConfigError, match="the domain is incomplete"):
        load_config_data(config("http://127.0.0.1:9", tmp_path, unbalanced), base_dir=tmp_path)


def test_the_example_config_loads() -> None:
    loaded = load_config(ROOT / "examples" / "connectors" / "odoo.yaml", resolve_secrets=False)
    (name,) = loaded.sources
    assert loaded.sources[name].connector is OdooConnector
    assert sorted(loaded.sources[name].mappings) == [
        "company", "contact", "invoice", "order", "product"]


# --- the conformance kit ----------------------------------------------------------------------


def _case(odoo: tuple[Server, OdooState], tmp_path: Path, entity: str) -> ConformanceCase:
    server, _ = odoo
    return ConformanceCase(config=copy.deepcopy(config(server.url, tmp_path, page_size=4)),
                           source="odoo", entity=entity, base_dir=tmp_path)


class TestOdooCompanies(ConnectorConformance):
    @pytest.fixture
    def case(self, odoo: tuple[Server, OdooState], tmp_path: Path) -> ConformanceCase:
        return _case(odoo, tmp_path, "company")


class TestOdooContacts(ConnectorConformance):
    @pytest.fixture
    def case(self, odoo: tuple[Server, OdooState], tmp_path: Path) -> ConformanceCase:
        return _case(odoo, tmp_path, "contact")


class TestOdooSaleOrders(ConnectorConformance):
    @pytest.fixture
    def case(self, odoo: tuple[Server, OdooState], tmp_path: Path) -> ConformanceCase:
        return _case(odoo, tmp_path, "order")


class TestOdooInvoices(ConnectorConformance):
    @pytest.fixture
    def case(self, odoo: tuple[Server, OdooState], tmp_path: Path) -> ConformanceCase:
        return _case(odoo, tmp_path, "invoice")
