"""The generic ``odata`` connector against OData v4 and v2 services on 127.0.0.1.

The services (``service.py``) evaluate ``$filter`` for real and reject a literal of the wrong
type with a 400, page by ``$skiptoken`` next links at most 4 entities at a time, and serve
``$metadata``; hubs are built from config with bearer auth, as a user would write them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from servers import Server

from odata import data
from odata.conftest import AUTH, TOKEN, Running
from patchbay import Hub
from patchbay.config import load_config_data
from patchbay.core.errors import ConfigError, SourceError
from patchbay.testing import ConformanceCase, ConnectorConformance

OWNER = "erp-team@acme.example"
COMPANIES = f"companies({data.COMPANY_ID})/customers"
CLEAN_CUSTOMERS = [f"bc:{row['id']}" for row in data.CUSTOMERS if row["displayName"]]
PERSONS = [row for row in data.PARTNERS if row["BusinessPartnerCategory"] == "1"]
GOOD_PERSONS = [row for row in PERSONS if row["BusinessPartner"] != data.BROKEN_PERSON]
GOOD_ORDERS = [row for row in data.SALES_ORDERS if row["SalesOrder"] != data.BROKEN_ORDER]


def v4_source(root: str, **settings: Any) -> dict[str, Any]:
    return {
        "connector": "odata", "owner": OWNER, "auth": AUTH,
        "settings": {"service_root": root, "version": "4", "page_size": 5, **settings},
        "entities": {"company": {
            "from": {"entity_set": COMPANIES,
                     "types": {"id": "Edm.Guid", "lastModifiedDateTime": "Edm.DateTimeOffset"}},
            "id": "id",
            "updated_at": "lastModifiedDateTime",
            "fields": {
                "name": {"path": "displayName", "required": True},
                "email": "email",
                "website": "website",
                "tax_id": "taxRegistrationNumber",
                "address.city": "address.city",
                "address.country": "address.countryLetterCode",
                "extra.number": "number",
            },
        }},
    }


def v2_source(root: str, **settings: Any) -> dict[str, Any]:
    types = {"CreationDate": "Edm.DateTime", "LastChangeDate": "Edm.DateTime",
             "SalesOrderDate": "Edm.DateTime", "LastChangeDateTime": "Edm.DateTimeOffset",
             "TotalNetAmount": "Edm.Decimal"}
    return {
        "connector": "odata", "owner": OWNER, "auth": AUTH,
        "settings": {"service_root": root, "version": "2", "page_size": 3, **settings},
        "entities": {
            "contact": {
                "from": {"entity_set": "API_BUSINESS_PARTNER/A_BusinessPartner",
                         "where": {"BusinessPartnerCategory": "1"}, "types": types},
                "id": "BusinessPartner",
                "updated_at": "LastChangeDate",
                "fields": {"first_name": "FirstName", "last_name": "LastName",
                           "full_name": "BusinessPartnerFullName", "created_at": "CreationDate",
                           "extra.search": "SearchTerm1"},
            },
            "order": {
                "from": {"entity_set": "API_SALES_ORDER_SRV/A_SalesOrder", "types": types},
                "id": "SalesOrder",
                "updated_at": "LastChangeDateTime",
                "fields": {"number": "SalesOrder",
                           "customer_id": {"path": "SoldToParty", "transform": "ref"},
                           "ordered_at": "SalesOrderDate",
                           "total": {"path": ["TotalNetAmount", "TransactionCurrency"],
                                     "transform": "money"},
                           "extra.reference": "PurchaseOrderByCustomer"},
                "lines": {"from": {"expand": "to_Item"}, "key": "SalesOrder",
                          "order_by": "SalesOrderItem",
                          "fields": {"sku": "Material", "description": "SalesOrderItemText",
                                     "quantity": {"path": "RequestedQuantity",
                                                  "transform": "decimal"},
                                     "total": {"path": ["NetAmount", "TransactionCurrency"],
                                               "transform": "money"}}},
            },
        },
    }


def config(name: str, source: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    return {"version": 1, "state": f"sqlite:///{tmp_path / 'state.db'}",
            "secret_key": "odata-tests-secret-key-0123456789", "sources": {name: source}}


def hub_for(name: str, source: dict[str, Any], tmp_path: Path, *, pushdown: bool = True) -> Hub:
    return Hub(load_config_data(config(name, source, tmp_path), base_dir=tmp_path),
               pushdown=pushdown)


async def ids(hub: Hub, entity: str, **kwargs: Any) -> list[str]:
    return [r.id async for r in hub.query(entity, **kwargs)]


# --- conformance --------------------------------------------------------------------------------


class TestV4Conformance(ConnectorConformance):
    @pytest.fixture(params=["client", "server"])
    def case(self, request: pytest.FixtureRequest, bc: Running) -> ConformanceCase:
        source = v4_source(bc.root, paging=request.param)
        return ConformanceCase(config={"version": 1, "sources": {"bc": source}}, source="bc",
                               entity="company", quarantined=1)


class TestV2Conformance(ConnectorConformance):
    @pytest.fixture(params=["contact", "order"])
    def case(self, request: pytest.FixtureRequest, sap: Running) -> ConformanceCase:
        return ConformanceCase(config={"version": 1, "sources": {"s4": v2_source(sap.root)}},
                               source="s4", entity=request.param, quarantined=1)


# --- reading --------------------------------------------------------------------------------


@pytest.mark.parametrize("paging", ["client", "server"])
async def test_v4_pages_by_top_skip_and_next_links(bc: Running, tmp_path: Path,
                                                   paging: str) -> None:
    bc.service.seen.clear()
    async with hub_for("bc", v4_source(bc.root, paging=paging), tmp_path) as hub:
        got = await ids(hub, "company")
    assert got == CLEAN_CUSTOMERS
    queries = [q for _, q in bc.service.seen]
    assert any("$skiptoken" in q for q in queries)  # the server's next links were followed
    if paging == "client":
        assert {q.get("$top") for q in queries if "$skiptoken" not in q} == {"5"}
        assert {q.get("$skip") for q in queries if "$skiptoken" not in q} >= {None, "5", "10"}
    else:
        assert not any("$top" in q or "$skip" in q for q in queries)


async def test_select_names_the_mapped_properties(bc: Running, tmp_path: Path) -> None:
    bc.service.seen.clear()
    async with hub_for("bc", v4_source(bc.root), tmp_path) as hub:
        await ids(hub, "company")
    selects = {q.get("$select") for _, q in bc.service.seen}
    assert selects == {"id,displayName,email,website,taxRegistrationNumber,address,number,"
                       "lastModifiedDateTime"}


@pytest.mark.parametrize("where", [
    {"name": "O'Brien & Söhne"},
    {"name": "Acme 100% Ltd"},
    {"name": "Ann + Bob GmbH"},
    {"name": "Epsilon?x=1"},
    {"name__contains": "'S"},
    {"name__in": ["Zeta Corp", "Beta/Gamma LLP", "it's \"quoted\""]},
    {"name__ne": "Zeta Corp", "address__city": "London"},
    {"email": "SALES.2@example.com"},
    {"tax_id__contains": "00000000"},
    {"website__isnull": False},
])
async def test_v4_filters_are_pushed_encoded_and_equal_the_in_memory_result(
    bc: Running, tmp_path: Path, where: dict[str, Any]
) -> None:
    async with hub_for("bc", v4_source(bc.root), tmp_path) as hub:
        plan = await hub.explain("company", **where)
        bc.service.seen.clear()
        pushed = await ids(hub, "company", **where)
        requests = list(bc.service.seen)
    async with hub_for("bc", v4_source(bc.root), tmp_path, pushdown=False) as memory:
        reference = await ids(memory, "company", **where)
    assert pushed == reference
    assert plan["sources"][0]["pushed_down"], plan
    assert requests and all("$filter" in q for _, q in requests)


async def test_a_pushed_filter_reaches_the_service_as_written(bc: Running, tmp_path: Path
                                                              ) -> None:
    async with hub_for("bc", v4_source(bc.root), tmp_path) as hub:
        bc.service.seen.clear()
        got = await ids(hub, "company", name="O'Brien & Söhne")
    assert got == [f"bc:{data.CUSTOMERS[10]['id']}"]
    assert {q["$filter"] for _, q in bc.service.seen} == {"displayName eq 'O''Brien & Söhne'"}


async def test_since_is_pushed_as_ge_on_the_modified_property(
    bc: Running, sap: Running, tmp_path: Path
) -> None:
    since = data.START + timedelta(hours=13 * 6)
    bc.service.seen.clear()
    async with hub_for("bc", v4_source(bc.root), tmp_path) as hub:
        got = await ids(hub, "company", since=since)
    assert got == [f"bc:{r['id']}" for r in data.CUSTOMERS
                   if r["displayName"] and r["lastModifiedDateTime"] >= since]
    # The Hub widens the bound by the 14 hours a time zone can add, then re-checks in memory.
    bound = (since - timedelta(hours=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert {q["$filter"] for _, q in bc.service.seen if "$skiptoken" not in q} == {
        f"lastModifiedDateTime ge {bound}"}
    orders_since = data.START + timedelta(hours=31 * 5)
    sap.service.seen.clear()
    async with hub_for("s4", v2_source(sap.root), tmp_path) as hub:
        orders = await ids(hub, "order", since=orders_since)
    assert orders == [f"s4:{r['SalesOrder']}" for r in GOOD_ORDERS
                      if r["LastChangeDateTime"] >= orders_since]
    bound = (orders_since - timedelta(hours=14)).strftime("%Y-%m-%dT%H:%M:%S")
    assert {q["$filter"] for _, q in sap.service.seen} == {
        f"LastChangeDateTime ge datetimeoffset'{bound}Z'"}


async def test_v2_rows_dates_and_expanded_lines(sap: Running, tmp_path: Path) -> None:
    sap.service.seen.clear()
    async with hub_for("s4", v2_source(sap.root), tmp_path) as hub:
        orders = [r async for r in hub.query("order")]
        contacts = [r async for r in hub.query("contact")]
    assert [r.id for r in orders] == [f"s4:{r['SalesOrder']}" for r in GOOD_ORDERS]
    first = orders[0]
    assert first.ordered_at == date(2024, 4, 3)
    assert first.updated_at == data.SALES_ORDERS[0]["LastChangeDateTime"]
    assert first.total is not None and first.total.amount == Decimal("250.50")
    assert first.customer_id == f"s4:{data.SALES_ORDERS[0]['SoldToParty']}"
    assert first.extra["reference"] == "PO 'rush' #1"
    # Lines come expanded, in SalesOrderItem order though the service sends them reversed.
    assert [(line.sku, line.quantity) for line in first.lines] == [
        ("MAT-2", Decimal("1.000")), ("MAT-3", Decimal("2.000"))]
    assert [r.id for r in contacts] == [f"s4:{r['BusinessPartner']}" for r in GOOD_PERSONS]
    assert contacts[0].created_at == date(2023, 11, 6)
    order_queries = [q for path, q in sap.service.seen if path.endswith("A_SalesOrder")]
    assert order_queries[0]["$expand"] == "to_Item"
    assert order_queries[0]["$select"].endswith(",to_Item")
    assert order_queries[0]["$format"] == "json"


@pytest.mark.parametrize("where", [
    {"last_name": "O'Neil"},
    {"full_name__contains": "'a"},
    {"created_at__gte": "2023-12-01", "created_at__lt": "2024-01-05"},
    {"first_name__in": ["Chloé", "D'Arcy"]},
])
async def test_v2_filters_equal_the_in_memory_result(
    sap: Running, tmp_path: Path, where: dict[str, Any]
) -> None:
    async with hub_for("s4", v2_source(sap.root), tmp_path) as hub:
        sap.service.seen.clear()
        pushed = await ids(hub, "contact", **where)
        requests = list(sap.service.seen)
    async with hub_for("s4", v2_source(sap.root), tmp_path, pushdown=False) as memory:
        reference = await ids(memory, "contact", **where)
    assert pushed == reference
    assert pushed, "the case should select something"
    assert requests and all(q["$filter"].startswith("BusinessPartnerCategory eq '1' and ")
                            for _, q in requests)


async def test_get_by_key(bc: Running, sap: Running, tmp_path: Path) -> None:
    customer = data.CUSTOMERS[1]
    bc.service.seen.clear()
    async with hub_for("bc", v4_source(bc.root), tmp_path) as hub:
        record = await hub.get("company", f"bc:{customer['id']}")
    assert record.name == customer["displayName"]
    assert [path for path, _ in bc.service.seen] == [
        f"/v2.0/tenant/production/api/v1.0/{COMPANIES}({customer['id']})"]
    sap.service.seen.clear()
    async with hub_for("s4", v2_source(sap.root), tmp_path) as hub:
        order = await hub.get("order", "s4:5000002")
        person = await hub.get("contact", f"s4:{PERSONS[0]['BusinessPartner']}")
    assert order.number == "5000002"
    assert [line.description for line in order.lines] == [  # items "10", "20", "100"
        "Material 1 for 2", "Material 2 for 2", "Material 3 for 2"]
    assert person.last_name == PERSONS[0]["LastName"]
    assert sap.service.seen[0][0].endswith("/A_SalesOrder('5000002')")


async def test_discover_and_describe_read_metadata(bc: Running, sap: Running, tmp_path: Path
                                                   ) -> None:
    async with hub_for("bc", v4_source(bc.root), tmp_path) as hub:
        schema = await hub.discover("bc")
    tables = {t.name: t for t in schema.tables}
    assert {"customers", "items", "salesOrders"} <= set(tables)
    customers = tables["customers"]
    assert customers.primary_key == ("id",)
    assert {c.name: c.type for c in customers.columns}["lastModifiedDateTime"] == (
        "Edm.DateTimeOffset")
    source = v2_source(sap.root, services=["API_BUSINESS_PARTNER"])
    async with hub_for("s4", source, tmp_path) as hub:
        schema = await hub.discover("s4")
        connector = await hub.connector("s4")
        described = await connector.describe(
            {"entity_set": "API_SALES_ORDER_SRV/A_SalesOrder"})
    names = {t.name for t in schema.tables}
    assert "API_BUSINESS_PARTNER/A_BusinessPartner" in names
    assert described is not None and described.primary_key == ("SalesOrder",)
    assert ("TotalNetAmount", "Edm.Decimal") in {(c.name, c.type) for c in described.columns}


# --- bad input -----------------------------------------------------------------------------------


def bad_app(stranger_url: str) -> FastAPI:
    app = FastAPI()
    entity = {"id": str(data.CUSTOMERS[0]["id"]), "displayName": "Ann"}

    @app.get("/svc/Html")
    async def html() -> HTMLResponse:
        return HTMLResponse("<html><body>Maintenance</body></html>")

    @app.get("/svc/NoD")
    async def no_d() -> dict[str, Any]:
        return {"value": [entity]}

    @app.get("/svc/Loop")
    async def loop(request: Request) -> dict[str, Any]:
        return {"value": [entity], "@odata.nextLink": str(request.url)}

    @app.get("/svc/LoopLater")
    async def loop_later(request: Request, step: int = 0) -> dict[str, Any]:
        # A -> B -> A: the repeat is a link seen two pages ago, not the current one.
        following = request.url.include_query_params(step=(step + 1) % 2)
        return {"value": [entity], "@odata.nextLink": str(following)}

    @app.get("/svc/Foreign")
    async def foreign() -> dict[str, Any]:
        return {"value": [entity], "@odata.nextLink": f"{stranger_url}/svc/Foreign?page=2"}

    @app.get("/svc/Error200")
    async def error_200() -> dict[str, Any]:
        return {"error": {"code": "BC_1042", "message": "The company is locked"}}

    @app.get("/svc/V2Error200")
    async def v2_error_200() -> dict[str, Any]:
        return {"error": {"code": "SY/530", "message": {"lang": "en", "value": "No authority"}}}

    @app.get("/svc/Array")
    async def array() -> JSONResponse:
        return JSONResponse([entity])

    @app.get("/svc/PagedLines")
    async def paged_lines() -> dict[str, Any]:
        return {"value": [{**entity, "lines": [{"sku": "A"}],
                           "lines@odata.nextLink": "/svc/PagedLines?x=1"},
                          {**entity, "id": str(data.CUSTOMERS[1]["id"]),
                           "lines": [{"sku": "B"}, 7]}]}

    return app


@pytest.fixture(scope="module")
def bad(stranger: tuple[Server, list[str]]) -> Iterator[str]:
    with Server(bad_app(stranger[0].url)) as running:
        yield f"{running.url}/svc"


def bad_source(root: str, entity_set: str, version: str = "4", **extra: Any) -> dict[str, Any]:
    return {
        "connector": "odata", "owner": OWNER, "auth": AUTH,
        "settings": {"service_root": root, "version": version},
        "entities": {"company": {"from": {"entity_set": entity_set, **extra}, "id": "id",
                                 "fields": {"name": "displayName"}}},
    }


@pytest.mark.parametrize(("entity_set", "version", "message"), [
    ("Html", "4", r"Html: GET 127\.0\.0\.1:\d+/svc/Html answered text/html \(status 200\), "
                  "not JSON"),
    ("NoD", "2", r"NoD: an OData v2 body without 'd' \(an OData v4 body: set version: '4'\)"),
    ("Loop", "4", r"Loop: the API sent the same next link \(GET 127\.0\.0\.1:\d+/svc/"
                  r"Loop\) twice"),
    ("LoopLater", "4", r"LoopLater: the API sent the same next link \(GET 127\.0\.0\.1:\d+/svc/"
                       r"LoopLater\) twice"),
    ("Error200", "4", "Error200: the service answered 200 with an error: BC_1042: The company "
                      "is locked"),
    ("V2Error200", "2", "the service answered 200 with an error: SY/530: No authority"),
    ("Array", "4", "Array: expected a JSON object, got a JSON array"),
])
async def test_bad_pages_are_clear_errors_naming_source_and_owner(
    bad: str, tmp_path: Path, entity_set: str, version: str, message: str
) -> None:
    async with hub_for("erp", bad_source(bad, entity_set, version), tmp_path) as hub:
        with pytest.raises(SourceError, match=message) as info:
            await ids(hub, "company")
    text = str(info.value)
    assert "'erp'" in text and OWNER in text and TOKEN not in text


async def test_a_next_link_to_another_host_is_refused(
    bad: str, stranger: tuple[Server, list[str]], tmp_path: Path
) -> None:
    _, hits = stranger
    async with hub_for("erp", bad_source(bad, "Foreign"), tmp_path) as hub:
        with pytest.raises(SourceError, match="refused the next page at http://127.0.0.1") as info:
            await ids(hub, "company")
    assert OWNER in str(info.value)
    assert hits == []  # not one request, so no credential, reached the other host


async def test_page_cap_is_an_error_not_a_silent_stop(bc: Running, tmp_path: Path) -> None:
    async with hub_for("bc", v4_source(bc.root, page_cap=2), tmp_path) as hub:
        with pytest.raises(SourceError, match="page_cap reached: read 2 pages") as info:
            await ids(hub, "company")
    assert OWNER in str(info.value)


async def test_a_property_missing_from_the_remote_object_quarantines_naming_it(
    bc: Running, tmp_path: Path
) -> None:
    source = v4_source(bc.root)
    block = source["entities"]["company"]
    block["from"]["select"] = False  # else the service itself refuses the unknown $select
    block["fields"]["extra.fax"] = "faxNumber"
    async with hub_for("bc", source, tmp_path) as hub:
        stream = hub.query("company")
        got = [r async for r in stream]
        kept = hub.quarantine.list(source="bc", entity="company", limit=100)
    assert got == []
    assert stream.quality.quarantined == len(data.CUSTOMERS)
    assert all(any("property 'faxNumber' is missing from the remote object" in reason
                   for reason in entry.reasons) for entry in kept)


async def test_lines_the_service_cut_short_quarantine_the_record(bad: str, tmp_path: Path
                                                                 ) -> None:
    source = bad_source(bad, "PagedLines")
    source["entities"] = {"order": {
        "from": {"entity_set": "PagedLines"}, "id": "id", "fields": {"number": "displayName"},
        "lines": {"from": {"expand": "lines"}, "key": "id", "fields": {"sku": "sku"}}}}
    async with hub_for("erp", source, tmp_path) as hub:
        stream = hub.query("order")
        got = [r async for r in stream]
        kept = hub.quarantine.list(source="erp", entity="order", limit=100)
    assert got == []
    reasons = sorted(r for entry in kept for r in entry.reasons)
    assert any("lines@odata.nextLink" in r and "incomplete" in r for r in reasons)
    assert any(r.startswith("lines[2].") and "not an object" in r for r in reasons)


async def test_http_errors_carry_the_odata_message_never_the_query(bc: Running, tmp_path: Path
                                                                   ) -> None:
    source = v4_source(bc.root, params={"secret-param": "t0p-s3cret"})
    source["entities"]["company"]["from"]["entity_set"] = f"companies({data.COMPANY_ID})/nope"
    async with hub_for("bc", source, tmp_path) as hub:
        with pytest.raises(SourceError, match="answered 404 Not Found: 404: no entity set 'nope'"
                           ) as info:
            await ids(hub, "company")
    text = str(info.value)
    assert "?" not in text and "t0p-s3cret" not in text and TOKEN not in text


def test_a_bad_from_block_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    source = v4_source("http://127.0.0.1:9")
    source["entities"]["company"]["from"] = {"entity_set": "https://evil.example/customers",
                                             "types": {"id": "Edm.Uuid"}}
    with pytest.raises(ConfigError) as info:
        load_config_data(config("bc", source, tmp_path), base_dir=tmp_path)
    text = str(info.value)
    assert "sources.bc.entities.company.from" in text
    assert "relative to service_root" in text and "unknown Edm types Edm.Uuid" in text


async def test_a_tampered_position_pointing_elsewhere_is_refused(bc: Running, tmp_path: Path
                                                                 ) -> None:
    from patchbay.core.connector import ReadRequest

    async with hub_for("bc", v4_source(bc.root), tmp_path) as hub:
        connector = await hub.connector("bc")
        position = {"page": {"skip": 0, "next": "http://127.0.0.1:1/x", "got": 0}, "skip": 0}
        request = ReadRequest("company", {"entity_set": COMPANIES}, ("id",), ("id",),
                              position=position)
        with pytest.raises(SourceError, match="refused the next page"):
            async for _ in connector.read(request):
                pass


def test_v2_and_v4_cases_share_nothing_mutable() -> None:
    first, second = v2_source("http://127.0.0.1:9"), v2_source("http://127.0.0.1:9")
    first["entities"]["contact"]["fields"]["x"] = 1
    assert "x" not in second["entities"]["contact"]["fields"]
    assert copy.deepcopy(first) == first
    assert datetime(2024, 1, 1, tzinfo=UTC) < data.START
