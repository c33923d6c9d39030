"""The salesforce connector against a miniature org on 127.0.0.1 (``sf_app``).

Hubs are built from config as a user writes it: ``connector: salesforce``, the preset's entities,
JWT-bearer auth whose assertion the org's token endpoint verifies with authlib (so the token
flow, the 401 refresh and the read all run for real), and the resilience layer in between.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from servers import Server
from sf_app import AUDIENCE, CLIENT_ID, REFRESH_TOKEN, START, USERNAME, Org, build_app, sf_id

from patchbay import Hub, Money
from patchbay.config import load_config, load_config_data
from patchbay.connectors.salesforce import SalesforceConnector, SalesforceSettings
from patchbay.core.connector import ReadRequest, Resources
from patchbay.core.errors import ConfigError, RecordNotFound, SourceError, SourceUnavailable
from patchbay.resilience import Events
from patchbay.testing import ConformanceCase, ConnectorConformance

OWNER = "sales-ops@acme.example"
ROOT = Path(__file__).resolve().parents[3]


# --- the org ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("keys") / "salesforce.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, public


@pytest.fixture(scope="module")
def other() -> Iterator[tuple[Server, list[str]]]:
    hits: list[str] = []
    app = FastAPI()

    @app.get("/{path:path}")
    async def anything(request: Request, path: str) -> dict[str, Any]:
        hits.append(request.headers.get("authorization") or "(none)")
        return {"totalSize": 0, "done": True, "records": []}

    with Server(app) as running:
        yield running, hits


@pytest.fixture(scope="module")
def server(key_file: tuple[Path, bytes], other: tuple[Server, list[str]]
           ) -> Iterator[tuple[Server, Org]]:
    org = Org(public_key=key_file[1], other_origin=other[0].url)
    with Server(build_app(org)) as running:
        org.url = running.url
        yield running, org


@pytest.fixture
def org(server: tuple[Server, Org]) -> Iterator[Org]:
    server[1].reset()
    yield server[1]
    server[1].reset()


def jwt_auth(url: str, key: Path) -> dict[str, Any]:
    return {"scheme": "jwt_bearer", "token_url": f"{url}/services/oauth2/token",
            "issuer": CLIENT_ID, "subject": USERNAME, "audience": AUDIENCE,
            "private_key": f"file:{key}"}


def config(server: tuple[Server, Org], key: Path, tmp_path: Path, *,
           entities: Any = "preset", auth: dict[str, Any] | None = None,
           **settings: Any) -> dict[str, Any]:
    url = server[0].url
    return {
        "version": 1, "state": f"sqlite:///{tmp_path / 'state.db'}",
        "secret_key": "salesforce-tests-secret-key-0123456789",
        "sources": {"sf": {
            "connector": "salesforce", "owner": OWNER, "auth": auth or jwt_auth(url, key),
            "resilience": {"retry": {"attempts": 2, "backoff": 0.01}},
            "settings": {"instance_url": url, "api_version": "62.0", **settings},
            "defaults": {"currency": "EUR", "phone_region": "GB"},
            "entities": entities,
        }},
    }


@pytest.fixture
def make_hub(server: tuple[Server, Org], key_file: tuple[Path, bytes], tmp_path: Path,
             org: Org) -> Any:
    def make(*, pushdown: bool = True, **kwargs: Any) -> Hub:
        data = config(server, key_file[0], tmp_path, **kwargs)
        return Hub(load_config_data(data, base_dir=tmp_path), pushdown=pushdown)

    return make


def in_api_order(sobject: str, org: Org) -> list[str]:
    rows = sorted(org.data[sobject], key=lambda r: (r["SystemModstamp"], r["Id"]))
    return [f"sf:{r['Id']}" for r in rows]


async def ids(hub: Hub, entity: str, **kwargs: Any) -> list[str]:
    return [r.id async for r in hub.query(entity, **kwargs)]


# --- reading ------------------------------------------------------------------------------------


async def test_accounts_come_as_companies_by_modstamp_then_id(make_hub: Any, org: Org) -> None:
    async with make_hub() as hub:
        stream = hub.query("company")
        got = [r async for r in stream]
    expected = [i for i in in_api_order("Account", org) if i != f"sf:{sf_id('Account', 99)}"]
    assert [r.id for r in got] == expected
    assert stream.quality.quarantined == 1  # the account without a Name
    obrien = next(r for r in got if r.remote_id == sf_id("Account", 2))
    assert obrien.model_dump(mode="json", include={
        "name", "website", "industry", "status", "address", "created_at", "extra",
        "updated_at"}) == {
        "name": "O'Brien & Sons", "website": "https://a2.example", "industry": None,
        "status": "active", "created_at": "2023-12-30",
        "address": {"line1": "2 High Street", "line2": None, "city": "Paris", "region": None,
                    "postal_code": "N2 1AA", "country": "FR"},
        "extra": {"account_number": "AC-0002"}, "updated_at": "2024-01-01T00:00:00Z"}
    (soql,) = org.queries
    assert soql == (
        "SELECT Id, Name, Website, Phone, Industry, Type, CreatedDate, AccountNumber, "
        "BillingStreet, BillingCity, BillingState, BillingPostalCode, BillingCountry, "
        "SystemModstamp FROM Account ORDER BY SystemModstamp, Id"
    )
    pages = [p for p in org.requests if "/query/" in p]
    assert len(pages) == 4  # 13 accounts, 3 a page: one query and four nextRecordsUrl pages


async def test_contacts_reference_their_account(make_hub: Any, org: Org) -> None:
    async with make_hub() as hub:
        ann = await hub.get("contact", f"sf:{sf_id('Contact', 4)}")
        company = await hub.get("company", ann.company_id)
        alone = await hub.get("contact", f"sf:{sf_id('Contact', 7)}")  # no account: null
        by_name = await ids(hub, "contact", company_name="Back\\slash Ltd")
    assert (ann.company_name, alone.company_id, alone.company_name) == (
        "Back\\slash Ltd", None, None)  # Account.Name, through the parent relationship
    fifth = {f"sf:{sf_id('Contact', i)}" for i in (4, 10)}  # the contacts of Account 5
    assert by_name == [i for i in in_api_order("Contact", org) if i in fifth]
    assert "WHERE (Account.Name = 'Back\\\\slash Ltd')" in org.queries[-1]
    assert ann.model_dump(include={"first_name", "last_name", "full_name", "email", "phone"}) == {
        "first_name": "Ann", "last_name": "Smith4", "full_name": "Ann Smith4",
        "email": "person4@acme.example", "phone": "+442079460018"}
    assert company.id == f"sf:{sf_id('Account', 5)}"


async def test_orders_carry_their_lines_from_the_subquery(make_hub: Any, org: Org) -> None:
    async with make_hub() as hub:
        orders = {r.remote_id: r async for r in hub.query("order")}
        more = [p for p in org.requests if "/query/" in p]
        single = await hub.get("order", f"sf:{sf_id('Order', 3)}")
    # One query for 8 orders, 2 more header pages, and 1 child page each for the two orders
    # with 3 lines (the org sends 2 lines per child batch): lines cost no query of their own.
    assert len(more) == 2 + 2
    third = orders[sf_id("Order", 3)]
    assert [(line.quantity, line.unit_price, line.total, line.product_id, line.description)
            for line in third.lines] == [
        (Decimal(j), Money(amount=Decimal("28.5"), currency="EUR"),
         Money(amount=Decimal("28.5") * j, currency="EUR"), f"sf:{sf_id('Product2', j)}",
         f"Line {j}") for j in (1, 2, 3)]  # more than one child batch: the rest by its locator
    assert orders[sf_id("Order", 50)].lines == []  # null subquery: no lines
    assert single == third
    assert third.total is not None and third.total.currency == "EUR"
    (soql, by_id) = org.queries
    assert "(SELECT OrderId, Product2Id, Description, Quantity, UnitPrice, TotalPrice, Id " \
           "FROM OrderItems ORDER BY OrderItemNumber, Id)" in soql
    assert f"WHERE (Id = '{sf_id('Order', 3)}')" in by_id


async def test_get_reads_one_row_and_a_missing_id_is_not_found(make_hub: Any, org: Org) -> None:
    async with make_hub() as hub:
        deal = await hub.get("deal", f"sf:{sf_id('Opportunity', 2)}")
        with pytest.raises(RecordNotFound):
            await hub.get("deal", f"sf:{sf_id('Opportunity', 77)}")
        with pytest.raises(RecordNotFound):
            await hub.get("deal", "sf:not-an-id' OR Id != null")
    assert (deal.name, deal.status, str(deal.probability)) == ("Deal 2", "lost", "0.0")
    rows = [p for p in org.requests if "/sobjects/Opportunity/" in p]
    assert rows == [f"/services/data/v62.0/sobjects/Opportunity/{sf_id('Opportunity', i)}"
                    for i in (2, 77)]  # the malformed id never reached the org
    assert org.queries == []


async def test_a_fixed_where_of_the_config_narrows_reads_and_gets(make_hub: Any, org: Org) -> None:
    entities = {"company": {"from": {"object": "Account", "where": "Industry = 'Retail'"}}}
    retail = [i for i, r in zip(in_api_order("Account", org), sorted(
        org.data["Account"], key=lambda r: (r["SystemModstamp"], r["Id"])), strict=True)
        if r["Industry"] == "Retail" and r["Name"]]
    async with make_hub(entities=entities) as hub:
        got = await ids(hub, "company", name__ne="Globex")
        with pytest.raises(RecordNotFound):  # not Retail: outside this binding
            await hub.get("company", f"sf:{sf_id('Account', 2)}")
    assert got == retail and got
    assert "FROM Account WHERE (Industry = 'Retail') ORDER BY" in org.queries[0]
    assert "WHERE (Industry = 'Retail') AND (Id = '001000000000002AAB')" in org.queries[1]


# --- push-down, since, resuming -----------------------------------------------------------------


async def test_filters_go_as_quoted_soql_and_equal_the_in_memory_result(
    make_hub: Any, org: Org
) -> None:
    wheres: list[dict[str, Any]] = [
        {"name": "O'Brien & Sons"}, {"name": "Back\\slash Ltd"}, {"name": "' OR Id != null"},
        {"name__in": ["Line\nBreak Inc", "Globex"]}, {"name__contains": "0% off_"},
        {"name__contains": "CORP"}, {"industry__isnull": False}, {"name": "ACME corp"},
        {"name__ne": "Globex"}, {"industry": "Retail", "address__city": "London"},
    ]
    for where in wheres:
        org.queries.clear()
        async with make_hub() as hub:
            pushed = await ids(hub, "company", **where)
        soql = org.queries[0]
        async with make_hub(pushdown=False) as memory:
            reference = await ids(memory, "company", **where)
        assert pushed == reference, where
        assert pushed, f"{where} matches nothing: a weak test"
        if "name__ne" not in where:
            assert " WHERE " in soql, where
    async with make_hub() as hub:
        org.queries.clear()
        assert await ids(hub, "company", name="O'Brien & Sons") == [
            f"sf:{sf_id('Account', 2)}"]
        assert org.queries[0].endswith(
            "FROM Account WHERE (Name = 'O\\'Brien & Sons') ORDER BY SystemModstamp, Id")
        org.queries.clear()
        await ids(hub, "company", name__contains="0% off_")
        assert "WHERE (Name LIKE '%0\\% o%\\_%')" in org.queries[0]
        # SOQL's = ignores case, so the org answers both spellings; the Hub re-checks.
        assert await ids(hub, "company", name="ACME corp") == [f"sf:{sf_id('Account', 8)}"]
        assert org.queries[-1].endswith("WHERE (Name = 'ACME corp') ORDER BY SystemModstamp, Id")


async def test_since_is_an_unquoted_utc_datetime_on_system_modstamp(
    make_hub: Any, org: Org
) -> None:
    since = START + timedelta(hours=20)
    async with make_hub() as hub:
        got = await ids(hub, "contact", since=since)
    expected = [i for i, r in zip(in_api_order("Contact", org), sorted(
        org.data["Contact"], key=lambda r: (r["SystemModstamp"], r["Id"])), strict=True)
        if datetime.fromisoformat(r["SystemModstamp"]) >= since]
    assert got == expected and got
    # The Hub widens a pushed datetime bound by the 14 hours a time zone can add, then
    # re-checks every record in memory.
    assert "WHERE (SystemModstamp >= 2024-01-01T06:00:00Z)" in org.queries[0]


async def test_a_resume_after_the_query_locator_expired_uses_the_keyset(
    make_hub: Any, org: Org
) -> None:
    everything = in_api_order("Contact", org)
    async with make_hub() as hub:
        first = await hub.fetch("contact", limit=5)
        org.cursors.clear()  # every query locator expires (15 minutes unused)
        rest = await hub.fetch("contact", limit=100, cursor=first.next_cursor)
    assert [r.id for r in first.records] + [r.id for r in rest.records] == everything
    fifth = next(r for r in org.data["Contact"] if f"sf:{r['Id']}" == everything[4])
    moment = fifth["SystemModstamp"][:19] + "Z"
    assert (f"WHERE (SystemModstamp > {moment} OR (SystemModstamp = {moment} AND "
            f"Id > '{fifth['Id']}'))") in org.queries[-1]
    # Five records share stamps in pairs: the tie-break on Id is what keeps them apart.
    stamps = [r["SystemModstamp"] for r in org.data["Contact"]]
    assert len(set(stamps)) < len(stamps)


async def test_a_locator_that_expires_mid_read_is_replaced_by_the_keyset(
    make_hub: Any, org: Org
) -> None:
    org.faults.add("expire_locators")
    async with make_hub() as hub:
        got = await ids(hub, "contact")
    assert got == in_api_order("Contact", org)  # every record once, none lost
    assert len(org.queries) == 2
    third = next(r for r in org.data["Contact"] if f"sf:{r['Id']}" == got[2])
    moment = third["SystemModstamp"][:19] + "Z"
    assert org.queries[1].endswith(
        f"WHERE (SystemModstamp > {moment} OR (SystemModstamp = {moment} AND "
        f"Id > '{third['Id']}')) ORDER BY SystemModstamp, Id")


# --- bad input ----------------------------------------------------------------------------------


async def read_error(make_hub: Any, entity: str = "company") -> SourceError:
    async with make_hub() as hub:
        with pytest.raises(SourceError) as info:
            await ids(hub, entity)
    message = str(info.value)
    assert "'sf'" in message and OWNER in message
    assert "?" not in message and "SELECT" not in message  # never the SOQL
    return info.value


async def test_a_page_that_is_not_json(make_hub: Any, org: Org) -> None:
    org.faults.add("html_page")
    error = await read_error(make_hub)
    assert re.search(r"Account query page 2: GET 127\.0\.0\.1:\d+/services/data/v62\.0/"
                     r"query/\S+ answered text/html \(status 200\), not JSON", str(error))


async def test_a_maintenance_page_is_unavailable_not_a_parse_error(
    make_hub: Any, org: Org
) -> None:
    org.faults.add("html_503")
    error = await read_error(make_hub)
    assert isinstance(error, SourceUnavailable)
    assert re.search(r"Account query page 2: GET 127\.0\.0\.1:\d+/services/data/v62\.0/"
                     r"query/\S+ answered 503 Service Unavailable", str(error))


async def test_a_repeating_next_records_url_stops(make_hub: Any, org: Org) -> None:
    org.faults.add("repeat_locator")
    error = await read_error(make_hub)
    # Page 2 named page 2's own URL as the next one.
    assert "Account query page 2: the API sent the same nextRecordsUrl twice" in str(error)
    assert len([p for p in org.requests if "/query/" in p]) == 1


async def test_a_next_records_url_to_another_host_is_refused(
    make_hub: Any, org: Org, other: tuple[Server, list[str]]
) -> None:
    org.faults.add("foreign_next")
    error = await read_error(make_hub)
    assert "refused the next page at http://127.0.0.1:" in str(error)
    assert other[1] == []  # no request, so no session token, reached the other host


async def test_a_200_with_an_error_list(make_hub: Any, org: Org) -> None:
    org.faults.add("error_200")
    error = await read_error(make_hub)
    assert str(error).endswith(
        "answered 200 with an error: QUERY_TIMEOUT: Your query request was running for too "
        "long.")


async def test_a_record_without_a_selected_field_is_quarantined(
    make_hub: Any, org: Org
) -> None:
    org.faults.add("drop_field")
    async with make_hub() as hub:
        stream = hub.query("contact")
        got = [r.id async for r in stream]
        kept = hub.quarantine.list(source="sf", entity="contact")
    assert len(got) == len(org.data["Contact"]) - 1
    assert stream.quality.quarantined == 1
    (entry,) = kept
    assert any("the answer has no field 'Phone'" in reason for reason in entry.reasons)


async def test_an_unknown_field_names_object_and_error_code_not_values(
    make_hub: Any, org: Org
) -> None:
    entities = {"company": {"fields": {"extra.rating": "Rating"}}}
    async with make_hub(entities=entities) as hub:
        with pytest.raises(SourceError) as info:
            await ids(hub, "company", name="Secret Customer Ltd")
    message = str(info.value)
    assert "Account query page 1" in message
    assert "answered 400 Bad Request: INVALID_FIELD:" in message
    assert "No such column 'Rating' on entity 'Account'" in message
    assert "check the field and object names in the mapping" in message
    assert "Secret Customer" not in message and "SELECT" not in message


def test_salesforce_messages_lose_the_echoed_query_and_every_value_sent() -> None:
    from patchbay.connectors.salesforce._connector import _said

    message = ("\nSELECT Id FROM Contact WHERE Email = 'ann\\'s@x.example'\n^\n"
               "ERROR at Row:1:Column:40\nunexpected token: 'ann\\'s@x.example' near ann's")
    said = _said([("MALFORMED_QUERY", message)], ["ann's@x.example", "ann's"])
    assert said == ": MALFORMED_QUERY: ERROR at Row:1:Column:40 unexpected token: '…' near …"


async def test_an_expired_session_is_refreshed_once_and_the_read_goes_on(
    make_hub: Any, org: Org
) -> None:
    org.faults.add("expire_once")
    async with make_hub() as hub:
        got = await ids(hub, "contact")
    assert got == in_api_order("Contact", org)
    assert org.token_grants == ["urn:ietf:params:oauth:grant-type:jwt-bearer"] * 2


async def test_refresh_token_auth(make_hub: Any, server: tuple[Server, Org], org: Org) -> None:
    auth = {"scheme": "oauth2_refresh_token", "token_url": f"{server[0].url}/services/oauth2/token",
            "client_id": CLIENT_ID, "refresh_token": "env:SF_REFRESH"}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SF_REFRESH", REFRESH_TOKEN)
        async with make_hub(auth=auth) as hub:
            got = await ids(hub, "product")
    assert len(got) == len(org.data["Product2"]) - 1  # one without a Name, quarantined
    assert org.token_grants == ["refresh_token"]


# --- API usage ----------------------------------------------------------------------------------


async def test_api_usage_is_read_logged_and_counted(
    make_hub: Any, org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    org.limit = 40
    caplog.set_level(logging.DEBUG, logger="patchbay.source.sf")
    async with make_hub() as hub:
        await ids(hub, "ticket")
        connector = await hub.connector("sf")
        assert isinstance(connector, SalesforceConnector)
        assert connector.api_usage is not None
        assert (connector.api_usage.used, connector.api_usage.limit) == (org.used, 40)
    assert f"Salesforce API usage {org.used}/40" in caplog.text
    # Counted in the Hub's events when the connector is handed them (see the closing report:
    # Resources.events); here the Resources are built as the Hub builds them, plus the sink.
    events = Events()
    async with httpx.AsyncClient() as plain:
        token = (await plain.post(f"{org.url}/services/oauth2/token", data={
            "grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN,
            "client_id": CLIENT_ID})).json()["access_token"]
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client:
        resources = Resources(source="sf", owner=OWNER, http_client=client)
        resources.events = events  # type: ignore[attr-defined]
        org.used, org.limit = 34, 40
        connector = SalesforceConnector(
            SalesforceSettings(instance_url=org.url), resources)
        request = ReadRequest("product", {"object": "Product2"}, ("Id",), ("Id", "Name"))
        rows = [row async for batch in connector.read(request) for row in batch.rows]
    assert len(rows) == len(org.data["Product2"])
    assert events.counters[("salesforce_api_requests", "sf")] == 3  # the query + 2 pages
    assert events.counters[("salesforce_api_usage_high", "sf")] == 1  # from 36/40 on: once


# --- config ---------------------------------------------------------------------------------------


def test_the_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(ROOT / "examples" / "connectors" / "salesforce.yaml",
                         resolve_secrets=False)
    source = config.sources["crm"]
    assert source.spec.connector == "salesforce"
    assert sorted(source.mappings) == ["company", "contact", "deal", "order", "product", "ticket"]


def test_settings_and_from_blocks_are_checked_at_load(
    server: tuple[Server, Org], key_file: tuple[Path, bytes], tmp_path: Path
) -> None:
    data = config(server, key_file[0], tmp_path, entities={
        "company": {"from": {"object": "Account; DELETE"}}})
    with pytest.raises(ConfigError, match=r"sources\.sf\.entities\.company\.from: object: "
                                          r"'Account; DELETE' is not an object's API name"):
        load_config_data(data, base_dir=tmp_path)
    data = config(server, key_file[0], tmp_path)
    data["sources"]["sf"]["settings"]["instance_url"] = "http://acme.my.salesforce.com"
    with pytest.raises(ConfigError, match="instance_url must use https"):
        load_config_data(data, base_dir=tmp_path)


# --- the conformance kit ---------------------------------------------------------------------


def _case(server: tuple[Server, Org], key: tuple[Path, bytes], tmp_path: Path, entity: str,
          quarantined: int = 0) -> ConformanceCase:
    server[1].reset()
    return ConformanceCase(config=config(server, key[0], tmp_path), source="sf", entity=entity,
                           base_dir=tmp_path, quarantined=quarantined)


class TestCompanyConformance(ConnectorConformance):
    @pytest.fixture
    def case(self, server: tuple[Server, Org], key_file: tuple[Path, bytes],
             tmp_path: Path) -> ConformanceCase:
        return _case(server, key_file, tmp_path, "company", quarantined=1)


class TestContactConformance(ConnectorConformance):
    @pytest.fixture
    def case(self, server: tuple[Server, Org], key_file: tuple[Path, bytes],
             tmp_path: Path) -> ConformanceCase:
        return _case(server, key_file, tmp_path, "contact")


class TestDealConformance(ConnectorConformance):
    @pytest.fixture
    def case(self, server: tuple[Server, Org], key_file: tuple[Path, bytes],
             tmp_path: Path) -> ConformanceCase:
        return _case(server, key_file, tmp_path, "deal", quarantined=1)  # without a Name


class TestTicketConformance(ConnectorConformance):
    @pytest.fixture
    def case(self, server: tuple[Server, Org], key_file: tuple[Path, bytes],
             tmp_path: Path) -> ConformanceCase:
        return _case(server, key_file, tmp_path, "ticket", quarantined=1)  # Case without Subject


class TestOrderConformance(ConnectorConformance):
    @pytest.fixture
    def case(self, server: tuple[Server, Org], key_file: tuple[Path, bytes],
             tmp_path: Path) -> ConformanceCase:
        return _case(server, key_file, tmp_path, "order")


class TestProductConformance(ConnectorConformance):
    @pytest.fixture
    def case(self, server: tuple[Server, Org], key_file: tuple[Path, bytes],
             tmp_path: Path) -> ConformanceCase:
        return _case(server, key_file, tmp_path, "product", quarantined=1)  # a blank Name
