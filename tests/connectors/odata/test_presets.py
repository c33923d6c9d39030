"""The ``business_central`` and ``sap_s4hana`` presets against the v4 and v2 test services.

Each preset entity passes the conformance kit; a few tests pin what the bindings map (statuses,
money with the company currency, lines in document order, references between entities), and
every example config under examples/connectors/ loads.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from odata import data
from odata.conftest import AUTH, Running
from patchbay import Hub
from patchbay.config import load_config, load_config_data
from patchbay.core.errors import ConfigError, RecordNotFound
from patchbay.testing import ConformanceCase, ConnectorConformance

ROOT = Path(__file__).resolve().parents[3]
OWNER = "finance-systems@acme.example"


def bc_source(root: str, **settings: Any) -> dict[str, Any]:
    return {"connector": "business_central", "owner": OWNER, "auth": AUTH,
            "settings": {"service_root": root, "company_id": data.COMPANY_ID, "currency": "GBP",
                         "page_size": 5, **settings},
            "entities": "preset"}


def sap_source(root: str, **settings: Any) -> dict[str, Any]:
    return {"connector": "sap_s4hana", "owner": OWNER, "auth": AUTH,
            "settings": {"service_root": root, "page_size": 6, **settings},
            "entities": "preset"}


def hub_for(sources: dict[str, Any], tmp_path: Path) -> Hub:
    config = {"version": 1, "state": f"sqlite:///{tmp_path / 'state.db'}",
              "secret_key": "odata-tests-secret-key-0123456789", "sources": sources}
    return Hub(load_config_data(config, base_dir=tmp_path))


# --- conformance --------------------------------------------------------------------------------

BC_CASES = {"company": 1, "product": 1, "order": 1, "invoice": 1, "vendors": 1}


class TestBusinessCentralConformance(ConnectorConformance):
    @pytest.fixture(params=sorted(BC_CASES))
    def case(self, request: pytest.FixtureRequest, bc: Running) -> ConformanceCase:
        if request.param == "vendors":  # the company binding reading vendors instead
            source = bc_source(bc.root, companies="vendors", paging="server")
            entity = "company"
        else:
            source, entity = bc_source(bc.root), request.param
        return ConformanceCase(config={"version": 1, "sources": {"bc": source}}, source="bc",
                               entity=entity, quarantined=BC_CASES[request.param])


SAP_CASES = {"company": 1, "contact": 1, "order": 1}


class TestSapS4HanaConformance(ConnectorConformance):
    @pytest.fixture(params=sorted(SAP_CASES))
    def case(self, request: pytest.FixtureRequest, sap: Running) -> ConformanceCase:
        return ConformanceCase(config={"version": 1, "sources": {"s4": sap_source(sap.root)}},
                               source="s4", entity=request.param,
                               quarantined=SAP_CASES[request.param])


# --- what the bindings map ----------------------------------------------------------------------


async def test_business_central_orders_invoices_and_their_lines(bc: Running, tmp_path: Path
                                                                ) -> None:
    async with hub_for({"bc": bc_source(bc.root)}, tmp_path) as hub:
        orders = [r async for r in hub.query("order")]
        invoices = [r async for r in hub.query("invoice")]
        company = await hub.get("company", orders[0].customer_id or "")
        product = await hub.get("product", orders[0].lines[0].product_id or "")
        paid = [r.id async for r in hub.query("invoice", status="paid")]
    first = data.ORDERS[0]
    order = orders[0]
    assert order.number == "SO-1001" and order.status == "confirmed"  # "Open"
    assert order.ordered_at == date(2024, 2, 4)
    # BC leaves currencyCode empty for the company's local currency: settings.currency.
    assert order.total is not None and (order.total.amount, order.total.currency) == (
        Decimal("110.40"), "GBP")
    assert [line.sku for line in order.lines] == [
        line["lineDetails"]["number"] for line in sorted(
            data.ORDER_LINES[first["id"]], key=lambda line: line["sequence"])]
    assert order.lines[0].unit_price is not None and order.lines[0].unit_price.currency == "GBP"
    assert company.name == data.CUSTOMERS[1]["displayName"]
    assert company.extra["role"] == "customer" and company.address is not None
    assert company.address.country == "US"
    assert product.name.startswith("Widget")
    assert {r.status for r in invoices} == {"draft", "open", "paid", "void", "other"}
    assert paid == [f"bc:{r['id']}" for r in data.INVOICES if r["status"] == "Paid"]


async def test_business_central_vendors_are_a_second_source(bc: Running, tmp_path: Path) -> None:
    sources = {"bc": bc_source(bc.root),
               "bc_vendors": {**bc_source(bc.root, companies="vendors"),
                              "entities": {"company": "preset"}}}
    async with hub_for(sources, tmp_path) as hub:
        companies = [r async for r in hub.query("company")]
    roles = {(r.source, r.extra["role"]) for r in companies}
    assert roles == {("bc", "customer"), ("bc_vendors", "vendor")}
    assert len([r for r in companies if r.source == "bc_vendors"]) == len(data.VENDORS) - 1


async def test_sap_partners_split_into_companies_and_contacts(sap: Running, tmp_path: Path
                                                              ) -> None:
    async with hub_for({"s4": sap_source(sap.root)}, tmp_path) as hub:
        companies = [r async for r in hub.query("company")]
        contacts = [r async for r in hub.query("contact")]
        orders = [r async for r in hub.query("order")]
        person = contacts[0]
        with pytest.raises(RecordNotFound):  # a person is not a company, even by key
            await hub.get("company", person.id)
    organisations = [r for r in data.PARTNERS if r["BusinessPartnerCategory"] == "2"]
    assert len(companies) == len(organisations) - 1  # one has no name: quarantined
    assert len(contacts) == len(data.PARTNERS) - len(organisations) - 1  # one lacks FirstName
    assert person.first_name == "Bob" and person.last_name == "O'Neil"
    assert person.created_at == date(2023, 11, 6)
    blocked = [r for r in data.PARTNERS if r["BusinessPartnerIsBlocked"]]
    assert {r.remote_id for r in companies + contacts if r.status == "inactive"} == {
        r["BusinessPartner"] for r in blocked}
    order = orders[0]
    assert order.status == "confirmed"
    assert order.customer_id == f"s4:{data.SALES_ORDERS[0]['SoldToParty']}"
    assert [line.description for line in order.lines] == ["Material 1 for 1",
                                                         "Material 2 for 1"]
    assert order.lines[1].total is not None and order.lines[1].total.currency == "USD"


# --- config --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["odata", "business_central", "sap_s4hana"])
def test_the_example_config_loads(kind: str) -> None:
    config = load_config(ROOT / "examples" / "connectors" / f"{kind}.yaml",
                         resolve_secrets=False)
    assert config.sources
    for source in config.sources.values():
        assert source.spec.connector == kind
        assert source.mappings, "the example binds no entity"


def test_preset_settings_are_checked_at_load(tmp_path: Path) -> None:
    source = bc_source("http://127.0.0.1:9", company_id="CRONUS", companies="suppliers")
    with pytest.raises(ConfigError) as info:
        hub_for({"bc": source}, tmp_path)
    text = str(info.value)
    assert "sources.bc.settings.company_id" in text and "GUID" in text
    assert "sources.bc.settings.companies" in text
