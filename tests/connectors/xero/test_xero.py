"""The xero connector against a handler app on 127.0.0.1 that follows Xero's documented shapes
(see xero_app.py): paging, ``where`` push-down and quoting, ``If-Modified-Since``, the tenant
header per patchbay tenant, Xero dates, embedded invoice lines, bad input, and the conformance
kit for companies, contacts and invoices."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from servers import Server
from xero_app import (
    CONTACTS,
    INVOICES,
    QUOTED_NAME,
    START,
    TENANTS,
    TOKEN,
    XeroState,
)

from patchbay import Hub
from patchbay.auth.store import CredentialStore
from patchbay.config import load_config, load_config_data
from patchbay.connectors.xero import XeroConnector, where_clause
from patchbay.core.connector import SourceFilter
from patchbay.core.errors import ConfigError, SourceError, SourceUnavailable
from patchbay.core.filters import Op
from patchbay.testing import ConformanceCase, ConnectorConformance

ROOT = Path(__file__).resolve().parents[3]
OWNER = "finance@acme.example"
SECRET_KEY = "xero-tests-secret-key-0123456789"
NAMED = [c for c in CONTACTS if "Name" in c]
ACCREC = [i for i in INVOICES if i["Type"] == "ACCREC"]


@pytest.fixture(scope="module")
def xero() -> Iterator[tuple[Server, XeroState]]:
    state = XeroState()
    with Server(state.app()) as server:
        yield server, state


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, xero: tuple[Server, XeroState]) -> None:
    monkeypatch.setenv("XERO_TOKEN", TOKEN)
    monkeypatch.setenv("XERO_TENANT_ID", TENANTS[""])
    xero[1].mode = "normal"
    xero[1].throttled = False


def source(url: str, entities: Any = "preset", **settings: Any) -> dict[str, Any]:
    return {
        "connector": "xero", "owner": OWNER,
        "auth": {"scheme": "bearer", "token": "env:XERO_TOKEN"},
        "resilience": {"retry": {"attempts": 2, "backoff": 0.01}},
        "defaults": {"currency": "GBP", "phone_region": "GB"},
        "settings": {"base_url": f"{url}/api.xro/2.0", "tenant_id": "env:XERO_TENANT_ID",
                     **settings},
        "entities": entities,
    }


def config(url: str, tmp_path: Path, entities: Any = "preset", **settings: Any
           ) -> dict[str, Any]:
    return {"version": 1, "state": f"sqlite:///{tmp_path / 'state.db'}",
            "secret_key": SECRET_KEY,
            "sources": {"xero": source(url, entities, **settings)}}


def hub_for(url: str, tmp_path: Path, entities: Any = "preset", *, pushdown: bool = True,
            **settings: Any) -> Hub:
    data = config(url, tmp_path, entities, **settings)
    return Hub(load_config_data(data, base_dir=tmp_path), pushdown=pushdown)


def paged(size: int) -> dict[str, Any]:
    """Every preset, contacts and invoices in pages of ``size``."""
    return {"company": {"from": {"endpoint": "Contacts", "page_size": size}},
            "contact": {"from": {"endpoint": "Contacts", "page_size": size}},
            "invoice": {"from": {"endpoint": "Invoices", "where": 'Type=="ACCREC"',
                                 "page_size": size}},
            "product": "preset"}


def listed(state: XeroState, path: str) -> list[dict[str, Any]]:
    return [r for r in state.requests if r["path"] == f"/api.xro/2.0/{path}"]


async def ids(hub: Hub, entity: str, **kwargs: Any) -> list[str]:
    return [r.id async for r in hub.query(entity, **kwargs)]


# --- reading ---------------------------------------------------------------------------------


async def test_contacts_are_read_page_by_page_with_the_tenant_header(
    xero: tuple[Server, XeroState], tmp_path: Path
) -> None:
    server, state = xero
    async with hub_for(server.url, tmp_path, paged(7)) as hub:
        state.requests.clear()
        got = await ids(hub, "company")
    assert got == [f"xero:{c['ContactID']}" for c in NAMED]
    requests = listed(state, "Contacts")
    assert [(r["params"]["page"], r["params"]["pageSize"]) for r in requests] == [
        ("1", "7"), ("2", "7"), ("3", "7"), ("4", "7")]
    for request in requests:
        assert request["headers"]["xero-tenant-id"] == TENANTS[""]
        assert request["headers"]["accept"] == "application/json"
        assert "where" not in request["params"] and "if-modified-since" not in request["headers"]


async def test_contacts_become_companies_and_contacts(
    xero: tuple[Server, XeroState], tmp_path: Path
) -> None:
    server, _ = xero
    async with hub_for(server.url, tmp_path) as hub:
        company = await hub.get("company", f"xero:{CONTACTS[0]['ContactID']}")
        person = await hub.get("contact", f"xero:{CONTACTS[0]['ContactID']}")
    assert company.model_dump(mode="json", include={
        "name", "tax_id", "email", "phone", "status", "address", "updated_at"}) == {
        "name": "Company 01", "tax_id": "GB100001", "email": "person1@company1.example",
        "phone": "+442079460001", "status": "active",
        "address": {"line1": "1 High Street", "line2": None, "city": "London", "region": None,
                    "postal_code": "N1 1AA", "country": "GB"},
        "updated_at": "2024-03-01T05:00:00Z"}
    assert (person.first_name, person.last_name, person.company_id, person.company_name) == (
        "First1", "Last1", company.id, "Company 01")


async def test_invoices_with_their_embedded_lines_and_xero_dates(
    xero: tuple[Server, XeroState], tmp_path: Path
) -> None:
    server, state = xero
    async with hub_for(server.url, tmp_path) as hub:
        state.requests.clear()
        invoices = [r async for r in hub.query("invoice")]
    assert [r.id for r in invoices] == [f"xero:{i['InvoiceID']}" for i in ACCREC]
    assert {r["params"]["where"] for r in listed(state, "Invoices")} == {'(Type=="ACCREC")'}
    second = invoices[1]  # INV-0002: three lines, paid, in NZD
    assert second.model_dump(mode="json", include={
        "number", "status", "issued_on", "due_on", "total", "balance", "updated_at",
        "customer_id"}) == {
        "number": "INV-0002", "status": "paid", "issued_on": "2024-03-03",
        "due_on": "2024-04-02", "total": {"amount": "140.0", "currency": "NZD"},
        "balance": {"amount": "0.0", "currency": "NZD"},
        "updated_at": "2024-03-01T06:00:17Z",
        "customer_id": f"xero:{CONTACTS[2]['ContactID']}"}
    assert [line.model_dump(mode="json", exclude_none=True) for line in second.lines] == [
        {"product_id": f"xero:{INVOICES[1]['LineItems'][n]['Item']['ItemID']}",
         "sku": f"W-{n + 1}", "description": f"Widget {n + 1}", "quantity": f"{n + 1}.0",
         "unit_price": {"amount": f"{10 * (n + 1)}.0", "currency": "NZD"},
         "total": {"amount": f"{10 * (n + 1) ** 2}.0", "currency": "NZD"}}
        for n in range(3)]


async def test_items_are_one_unpaged_request(
    xero: tuple[Server, XeroState], tmp_path: Path
) -> None:
    server, state = xero
    async with hub_for(server.url, tmp_path) as hub:
        state.requests.clear()
        products = [r async for r in hub.query("product")]
    assert [(p.sku, p.active) for p in products] == [
        ("W-1", True), ("W-2", True), ("W-3", False), ("W-4", True), ("W-5", True)]
    assert products[1].unit_price is not None and str(products[1].unit_price.amount) == "20.0"
    (request,) = listed(state, "Items")
    assert "page" not in request["params"] and "pageSize" not in request["params"]


# --- push-down --------------------------------------------------------------------------------


def test_where_literals_are_quoted_the_way_xero_reads_them() -> None:
    def clause(path: str, value: Any, op: Op = Op.EQ) -> str | None:
        return where_clause(SourceFilter(path, op, value))

    assert clause("Name", 'Acme "Best" Ltd') == 'Name=="Acme ""Best"" Ltd"'
    assert clause("Name", 'x" OR Name!="') == 'Name=="x"" OR Name!="""'  # stays one literal
    assert clause("Name", "back\\slash") == 'Name=="back\\slash"'
    assert clause("Status", "AUTHORISED") == 'Status=="AUTHORISED"'
    assert clause("IsSold", True) == "IsSold==true"
    assert clause("Contact.ContactID", "5CC8CF28-567E-4D43-B287-687CFCAEC47C") == (
        'Contact.ContactID==Guid("5cc8cf28-567e-4d43-b287-687cfcaec47c")')
    assert clause("ContactID", "not-a-guid") is None  # no literal: evaluated in memory
    assert clause("Status", ("PAID", "VOIDED"), Op.IN) == (
        '(Status=="PAID" OR Status=="VOIDED")')
    assert clause("Name", "x", Op.NE) is None
    assert clause("Name) OR (1", "x") is None  # not a path: never spliced into the expression
    assert where_clause(SourceFilter("Name", Op.EQ, "acme", fold=True)) is None


async def test_filters_are_pushed_as_where_and_equal_the_in_memory_result(
    xero: tuple[Server, XeroState], tmp_path: Path
) -> None:
    server, state = xero
    customer = f"xero:{CONTACTS[3]['ContactID']}"
    async with hub_for(server.url, tmp_path) as hub:
        plan = await hub.explain("invoice", customer_id=customer, number="INV-0023")
        state.requests.clear()
        pushed = await ids(hub, "invoice", customer_id=customer)
        by_name = await ids(hub, "company", name=QUOTED_NAME)
        requests = [r["params"].get("where") for r in state.requests]
    async with hub_for(server.url, tmp_path, pushdown=False) as memory:
        reference = await ids(memory, "invoice", customer_id=customer)
    assert pushed == reference == [f"xero:{i['InvoiceID']}" for i in ACCREC
                                   if i["Contact"]["ContactID"] == CONTACTS[3]["ContactID"]]
    assert pushed, "the filter must match something to show anything"
    assert by_name == [f"xero:{CONTACTS[3]['ContactID']}"]
    assert {(p["path"], p["op"]) for p in plan["sources"][0]["pushed_down"]} == {
        ("Contact.ContactID", "eq"), ("InvoiceNumber", "eq")}
    guid = CONTACTS[3]["ContactID"]
    assert requests == [f'(Type=="ACCREC") AND Contact.ContactID==Guid("{guid}")',
                        'Name=="Acme ""Best"" Ltd"']


async def test_since_is_sent_as_if_modified_since(
    xero: tuple[Server, XeroState], tmp_path: Path
) -> None:
    server, state = xero
    since = START + timedelta(hours=3 * 20, seconds=17)
    async with hub_for(server.url, tmp_path) as hub:
        state.requests.clear()
        got = await ids(hub, "invoice", since=since)
        headers = [r["headers"].get("if-modified-since") for r in listed(state, "Invoices")]
    assert got == [f"xero:{i['InvoiceID']}" for i in ACCREC if int(i["InvoiceNumber"][4:]) >= 20]
    # The Hub widens the bound by 14 hours (time zones), the connector rounds down to seconds.
    assert headers == [(since - timedelta(hours=14)).strftime("%Y-%m-%dT%H:%M:%SZ")]


async def test_the_tenant_id_comes_from_each_tenants_credentials(
    xero: tuple[Server, XeroState], tmp_path: Path
) -> None:
    server, state = xero
    data = config(server.url, tmp_path, tenant_id="store:xero_tenant")
    store = CredentialStore(sa.create_engine(data["state"]), [SECRET_KEY])
    for tenant, xero_tenant in TENANTS.items():
        store.set("xero_tenant", xero_tenant, tenant)
    store.engine.dispose()
    async with Hub(load_config_data(data, base_dir=tmp_path)) as hub:
        state.requests.clear()
        acme = await ids(hub, "company", tenant="acme")
        globex = await ids(hub, "company", tenant="globex")
        sent = [r["headers"]["xero-tenant-id"] for r in listed(state, "Contacts")]
    assert acme == [f"xero:{c['ContactID']}" for c in NAMED]
    assert globex == [f"xero:{c['ContactID']}" for c in CONTACTS[:3]]
    assert sent == [TENANTS["acme"], TENANTS["globex"]]


async def test_a_429_with_retry_after_reaches_the_resilience_layer(
    xero: tuple[Server, XeroState], tmp_path: Path
) -> None:
    server, state = xero
    state.mode = "throttle_once"
    async with hub_for(server.url, tmp_path) as hub:
        state.requests.clear()
        got = await ids(hub, "product")
    assert len(got) == 5
    assert len(listed(state, "Items")) == 2  # the 429, then the retry it allowed


# --- bad input --------------------------------------------------------------------------------


async def test_a_page_that_is_not_json_names_the_source(
    xero: tuple[Server, XeroState], tmp_path: Path
) -> None:
    server, state = xero
    state.mode = "html"
    async with hub_for(server.url, tmp_path) as hub:
        with pytest.raises(SourceError, match=r"Contacts: GET 127\.0\.0\.1.*text/html.*not JSON"
                           ) as info:
            await ids(hub, "company")
    assert "'xero'" in str(info.value) and OWNER in str(info.value)


async def test_an_answer_without_the_records_is_an_error_not_an_empty_result(
    xero: tuple[Server, XeroState], tmp_path: Path
) -> None:
    server, state = xero
    state.mode = "no_records"
    async with hub_for(server.url, tmp_path) as hub:
        with pytest.raises(SourceError, match=r"no list 'Invoices' of records .*pagination"):
            await ids(hub, "invoice")


async def test_a_server_ignoring_the_page_stops_with_an_error_not_a_loop(
    xero: tuple[Server, XeroState], tmp_path: Path
) -> None:
    server, state = xero
    state.mode = "ignore_page"
    async with hub_for(server.url, tmp_path, paged(5)) as hub:
        state.requests.clear()
        with pytest.raises(SourceError, match="page 2 holds the same records as page 1"):
            await ids(hub, "company")
    assert len(listed(state, "Contacts")) == 2


async def test_a_contact_without_a_name_is_quarantined_with_the_reason(
    xero: tuple[Server, XeroState], tmp_path: Path
) -> None:
    server, _ = xero
    async with hub_for(server.url, tmp_path) as hub:
        stream = hub.query("company")
        got = [r.id async for r in stream]
        kept = hub.quarantine.list(source="xero", entity="company")
    assert len(got) == len(NAMED)
    assert stream.quality.quarantined == 1
    (entry,) = kept
    assert entry.remote_id == CONTACTS[12]["ContactID"]
    assert any("name" in reason for reason in entry.reasons)


async def test_a_wrong_token_is_one_clear_attempt_without_the_secrets(
    xero: tuple[Server, XeroState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, state = xero
    monkeypatch.setenv("XERO_TOKEN", "a-wrong-t0ken")
    async with hub_for(server.url, tmp_path) as hub:
        state.requests.clear()
        with pytest.raises(SourceError) as info:
            await ids(hub, "product")
    message = str(info.value)
    assert not isinstance(info.value, SourceUnavailable)
    assert "401" in message and "AuthenticationUnsuccessful" in message and OWNER in message
    assert "a-wrong-t0ken" not in message and TENANTS[""] not in message
    assert len(state.requests) == 1


async def test_an_unknown_tenant_is_a_clear_403(
    xero: tuple[Server, XeroState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = xero
    monkeypatch.setenv("XERO_TENANT_ID", "00000000-0000-4000-8000-000000000000")
    async with hub_for(server.url, tmp_path) as hub:
        with pytest.raises(SourceError, match="403 .*tenant_id") as info:
            await ids(hub, "product")
    assert "00000000-0000-4000-8000-000000000000" not in str(info.value)


async def test_a_where_xero_cannot_parse_shows_xeros_message(
    xero: tuple[Server, XeroState], tmp_path: Path
) -> None:
    server, _ = xero
    entities = {"product": {"from": {"endpoint": "Items", "where": "Code.StartsWith(1)"}}}
    async with hub_for(server.url, tmp_path, entities) as hub:
        with pytest.raises(SourceError, match=r"400 Bad Request: Xero says 'Only == is"):
            await ids(hub, "product")


def test_bad_from_blocks_fail_when_the_config_loads(tmp_path: Path) -> None:
    bad = {"company": {"from": {"endpoint": "Customers"}}}
    with pytest.raises(ConfigError, match=r"entities\.company\.from: endpoint: unknown endpoint "
                                          r"'Customers'; endpoints: Contacts, Invoices"):
        load_config_data(config("http://127.0.0.1:9", tmp_path, bad), base_dir=tmp_path)
    clash = {"company": {"from": {"endpoint": "Contacts", "params": {"page": 3}}}}
    with pytest.raises(ConfigError, match=r"params: .*page: set by the connector"):
        load_config_data(config("http://127.0.0.1:9", tmp_path, clash), base_dir=tmp_path)


def test_the_example_config_loads() -> None:
    loaded = load_config(ROOT / "examples" / "connectors" / "xero.yaml", resolve_secrets=False)
    (name,) = loaded.sources
    assert loaded.sources[name].connector is XeroConnector
    assert sorted(loaded.sources[name].mappings) == ["company", "contact", "invoice", "product"]


# --- the conformance kit ----------------------------------------------------------------------


def _case(xero: tuple[Server, XeroState], tmp_path: Path, entity: str, quarantined: int = 0
          ) -> ConformanceCase:
    server, _ = xero
    return ConformanceCase(config=copy.deepcopy(config(server.url, tmp_path, paged(6))),
                           source="xero", entity=entity, base_dir=tmp_path,
                           quarantined=quarantined)


class TestXeroCompanies(ConnectorConformance):
    @pytest.fixture
    def case(self, xero: tuple[Server, XeroState], tmp_path: Path) -> ConformanceCase:
        return _case(xero, tmp_path, "company", quarantined=1)


class TestXeroContacts(ConnectorConformance):
    @pytest.fixture
    def case(self, xero: tuple[Server, XeroState], tmp_path: Path) -> ConformanceCase:
        return _case(xero, tmp_path, "contact")


class TestXeroInvoices(ConnectorConformance):
    @pytest.fixture
    def case(self, xero: tuple[Server, XeroState], tmp_path: Path) -> ConformanceCase:
        return _case(xero, tmp_path, "invoice")

