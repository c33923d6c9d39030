"""The HubSpot preset against a handler app on 127.0.0.1 that answers like HubSpot's CRM API.

Hubs are built from config as a user writes it (``entities: preset``, a private-app token from
the environment). The app (``hubspot_app``) follows HubSpot's documented request and response
shapes, enforces the search window, counts every request, and can answer 429s.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from servers import Server

from patchbay import Hub
from patchbay.config import load_config, load_config_data
from patchbay.core.errors import ConfigError, SourceError, SourceUnavailable
from patchbay.testing import ConformanceCase, ConnectorConformance

from . import data
from .hubspot_app import HubSpotApp

TOKEN = "pat-eu1-n3ver-app3ar-in-l0gs"
OWNER = "revops@acme.example"
AUTH = {"scheme": "bearer", "token": "env:HUBSPOT_TOKEN"}
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "connectors" / "hubspot.yaml"


@pytest.fixture(scope="module")
def other() -> Iterator[tuple[Server, list[str]]]:
    """Another origin: the app's ``paging.next.link`` points here; nothing may reach it."""
    hits: list[str] = []
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def anything(request: Request, path: str) -> dict[str, Any]:
        hits.append(request.headers.get("authorization") or "(no credentials)")
        return {"results": []}

    with Server(app) as running:
        yield running, hits


@pytest.fixture(scope="module")
def api(other: tuple[Server, list[str]]) -> Iterator[tuple[Server, HubSpotApp]]:
    state = HubSpotApp(data.all_objects(), data.associations(), tokens={TOKEN})
    state.link_origin = other[0].url
    with Server(state.app()) as running:
        yield running, state


@pytest.fixture(autouse=True)
def _token_env(monkeypatch: pytest.MonkeyPatch, api: tuple[Server, HubSpotApp]) -> None:
    monkeypatch.setenv("HUBSPOT_TOKEN", TOKEN)
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", "hubspot-client-secret")
    monkeypatch.setenv("HUBSPOT_REFRESH_TOKEN", "hubspot-refresh-1")
    api[1].reset()


def config(url: str, tmp_path: Path, *, entities: Any = "preset", auth: Any = None,
           **settings: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "connector": "hubspot", "owner": OWNER, "auth": auth or AUTH,
        "resilience": {"retry": {"attempts": 4, "backoff": 0.01}},
        "defaults": {"currency": "USD", "phone_region": "GB"},
        "settings": {"base_url": url, "page_size": 10, **settings},
    }
    if entities is not None:
        source["entities"] = entities
    return {"version": 1, "state": f"sqlite:///{tmp_path / 'state.db'}",
            "secret_key": "hubspot-tests-secret-key-0123456789", "sources": {"crm": source}}


def hub_for(url: str, tmp_path: Path, *, pushdown: bool = True, **kwargs: Any) -> Hub:
    return Hub(load_config_data(config(url, tmp_path, **kwargs), base_dir=tmp_path),
               pushdown=pushdown)


def bulk_binding(name: str) -> dict[str, Any]:
    return {"product": {"from": {"object": name}, "id": "id", "updated_at": "updatedAt",
                        "fields": {"name": "properties.name", "sku": None,
                                   "description": None, "unit_price": None}}}


async def ids(hub: Hub, entity: str, **kwargs: Any) -> list[str]:
    return [r.id async for r in hub.query(entity, **kwargs)]


# --- reading ----------------------------------------------------------------------------------


async def test_preset_reads_every_object_with_exact_counts(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, _ = api
    async with hub_for(server.url, tmp_path) as hub:
        counts = {}
        for entity in ("contact", "company", "deal", "ticket", "product", "order"):
            stream = hub.query(entity)
            records = [r async for r in stream]
            quality = stream.quality.sources["crm"]
            counts[entity] = (len(records), quality.quarantined)
    assert counts == {"contact": (40, 0), "company": (11, 1), "deal": (29, 1),
                      "ticket": (24, 1), "product": (8, 0), "order": (11, 1)}


async def test_records_are_mapped_from_hubspot_properties(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, _ = api
    async with hub_for(server.url, tmp_path) as hub:
        ann = await hub.get("contact", "crm:101")
        missing = await hub.get("contact", "crm:108")
        deal = await hub.get("deal", "crm:5002")
        ticket = await hub.get("ticket", "crm:7004")
    assert ann.model_dump(mode="json", include={
        "id", "first_name", "last_name", "full_name", "email", "phone", "title", "company_id",
        "company_name", "status", "updated_at", "address"}) == {
        "id": "crm:101", "first_name": "Ann", "last_name": "SMITH", "full_name": "Ann SMITH",
        "email": "ann.0@acme.example", "phone": "+442079460000", "title": "CFO",
        "company_id": "crm:1001", "company_name": "Acme 0", "status": "lead",
        "updated_at": "2024-01-01T00:00:00Z",
        "address": {"line1": None, "line2": None, "city": "Berlin", "region": None,
                    "postal_code": None, "country": "DE"}}
    assert missing.email is None and missing.first_name == "Cleo"  # no email property at all
    assert deal.model_dump(mode="json", include={"name", "amount", "stage", "status",
                                                 "close_date", "company_id", "owner"}) == {
        "name": "Deal 1", "amount": {"amount": "100.50", "currency": "USD"},
        "stage": "closedwon", "status": "won", "close_date": "2024-02-01",
        "company_id": None, "owner": "901"}
    assert ticket.model_dump(mode="json", include={"subject", "status", "priority",
                                                   "closed_at", "company_id"}) == {
        "subject": "Printer 3 on fire", "status": "closed", "priority": "urgent",
        "closed_at": "2024-01-04T00:00:00Z", "company_id": "crm:1004"}


async def test_only_the_mapped_properties_are_requested(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, state = api
    async with hub_for(server.url, tmp_path) as hub:
        await ids(hub, "product")
    (query,) = [q for m, p, q in state.seen if p == "/crm/v3/objects/products"]
    assert query["properties"].split(",") == [
        "name", "hs_sku", "description", "price", "hs_lastmodifieddate"]
    assert query["limit"] == "10" and "after" not in query


async def test_associations_take_one_batch_request_per_page(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, state = api
    async with hub_for(server.url, tmp_path) as hub:
        records = [r async for r in hub.query("contact")]
    pages = [q for m, p, q in state.seen if p == "/crm/v3/objects/contacts"]
    batches = [b for m, p, b in state.seen
               if p == "/crm/v4/associations/contacts/companies/batch/read"]
    assert len(pages) == 4 and len(batches) == 4  # 40 contacts, 10 a page
    assert [len(b["inputs"]) for b in batches] == [10, 10, 10, 10]
    by_id = {r.remote_id: r.company_id for r in records}
    # The primary association wins over an unlabeled one; none gives null.
    assert by_id["101"] == "crm:1001" and by_id["106"] == "crm:1006"
    assert by_id["104"] is None and by_id["111"] is None


async def test_deal_company_without_primary_is_the_lowest_id(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, _ = api
    async with hub_for(server.url, tmp_path) as hub:
        deal = await hub.get("deal", "crm:5001")  # linked to 1005 and 1001, both unlabeled
    assert deal.company_id == "crm:1001"


# --- orders and their line items ---------------------------------------------------------------


async def test_orders_come_with_their_line_items(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, state = api
    async with hub_for(server.url, tmp_path) as hub:
        stream = hub.query("order")
        records = [r async for r in stream]
        (bad,) = stream.quality.sources["crm"].samples
    assert len(records) == 11 and bad.remote_id == "40012"
    assert bad.reasons == ("lines[4].line_items 45999, associated with orders 40012, was not "
                           "returned by the batch read",)
    first = records[0]
    assert first.model_dump(mode="json", include={"number", "customer_id", "total",
                                                  "ordered_at", "extra"}) == {
        "number": "SO-0000", "customer_id": "crm:101",
        "total": {"amount": "10.00", "currency": "GBP"}, "ordered_at": "2024-01-01",
        "extra": {"fulfillment_status": "Packing", "external_id": "EXT-0"}}
    assert [line.model_dump(mode="json") for line in first.lines] == [
        {"product_id": "crm:9001", "sku": "W-000", "description": "Widget 0",
         "quantity": "1", "unit_price": {"amount": "19.99", "currency": "GBP"},
         "total": {"amount": "19.97", "currency": "GBP"}},
        {"product_id": "crm:9002", "sku": "W-001", "description": "Widget 1",
         "quantity": "2", "unit_price": {"amount": "29.99", "currency": "GBP"},
         "total": {"amount": "49.97", "currency": "GBP"}},
        {"product_id": "crm:9003", "sku": "W-002", "description": "Widget 2",
         "quantity": "3", "unit_price": {"amount": "39.99", "currency": "GBP"},
         "total": {"amount": "99.97", "currency": "GBP"}}]
    assert [len(r.lines) for r in records] == [3, 3, 3, 0, 3, 3, 3, 3, 3, 3, 3]
    # Per page of 10 orders: the list, one association read per type, one batch read of lines.
    paths = [p for _, p, _ in state.seen]
    assert paths.count("/crm/v3/objects/orders") == 2
    assert paths.count("/crm/v4/associations/orders/line_items/batch/read") == 2
    assert paths.count("/crm/v4/associations/orders/contacts/batch/read") == 2
    assert paths.count("/crm/v3/objects/line_items/batch/read") == 2
    lines_read = next(b for _, p, b in state.seen
                      if p == "/crm/v3/objects/line_items/batch/read")
    assert lines_read["properties"] == ["hs_product_id", "hs_sku", "name", "quantity", "price",
                                        "hs_line_item_currency_code", "amount",
                                        "hs_lastmodifieddate"]


async def test_get_and_cursors_keep_the_lines(api: tuple[Server, HubSpotApp], tmp_path: Path
                                              ) -> None:
    server, _ = api
    async with hub_for(server.url, tmp_path) as hub:
        everything = [r async for r in hub.query("order")]
        one = await hub.get("order", "crm:40002")
        paged = []
        cursor = None
        while True:
            page = await hub.fetch("order", limit=4, cursor=cursor)
            paged += page.records
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert one == everything[1] and len(one.lines) == 3
    assert paged == everything


async def test_a_lines_key_other_than_the_association_is_named(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, _ = api
    entities = {"order": {"lines": {"from": {"object": "line_items"}, "key": "properties.order",
                                    "fields": {"sku": "properties.hs_sku"}}}}
    async with hub_for(server.url, tmp_path, entities=entities) as hub:
        with pytest.raises(SourceError, match=r"write lines\.key: associated\.orders"):
            await ids(hub, "order")


# --- push-down and since ----------------------------------------------------------------------


async def test_filters_go_to_the_search_endpoint_and_equal_the_in_memory_result(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, state = api
    where = {"last_name": "Smith", "first_name": "Ann", "title__ne": "Boss"}
    async with hub_for(server.url, tmp_path) as hub:
        plan = await hub.explain("contact", **where)
        pushed = await ids(hub, "contact", **where)
    (body,) = state.searches()
    async with hub_for(server.url, tmp_path, pushdown=False) as memory:
        reference = await ids(memory, "contact", **where)
    assert pushed == reference
    # HubSpot's EQ ignores case: 101 and 131 (SMITH) come back too; the Hub drops them again.
    assert pushed == ["crm:116"]
    assert {(p["path"], p["op"]) for p in plan["sources"][0]["pushed_down"]} == {
        ("properties.lastname", "eq"), ("properties.firstname", "eq")}
    assert body["filterGroups"] == [{"filters": [
        {"propertyName": "lastname", "operator": "EQ", "value": "Smith"},
        {"propertyName": "firstname", "operator": "EQ", "value": "Ann"}]}]
    assert body["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]


async def test_what_is_never_pushed(api: tuple[Server, HubSpotApp], tmp_path: Path) -> None:
    server, state = api
    async with hub_for(server.url, tmp_path) as hub:
        plan = await hub.explain("contact", last_name__ne="Smith", email__contains="ann",
                                 first_name__in=["Ann", "Bob"], company_id="crm:1001",
                                 title__gt="B")
        got = await ids(hub, "contact", first_name__in=["Ann", "Bob"], company_id="crm:1001")
    assert plan["sources"][0]["pushed_down"] == []
    assert not state.searches()
    assert got == ["crm:101", "crm:112"]


async def test_since_searches_by_last_modified_date(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, state = api
    async with hub_for(server.url, tmp_path) as hub:
        got = await ids(hub, "contact", since=data.START + timedelta(hours=30))
    assert got == [f"crm:{101 + i}" for i in range(30, 40)]  # hour 30 + 30 ms is after since
    first = state.searches()[0]
    since_ms = int((data.START + timedelta(hours=30 - 14)).timestamp() * 1000)
    assert first["filterGroups"] == [{"filters": [
        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(since_ms)}]}]
    assert "lastmodifieddate" in first["properties"]


async def test_id_in_and_isnull_are_pushed(api: tuple[Server, HubSpotApp], tmp_path: Path
                                           ) -> None:
    server, state = api
    async with hub_for(server.url, tmp_path) as hub:
        got = await ids(hub, "company", id__in=["crm:1003", "crm:1005"], website__isnull=False)
    (body,) = state.searches()
    assert got == ["crm:1003", "crm:1005"]
    assert body["filterGroups"][0]["filters"] == [
        {"propertyName": "hs_object_id", "operator": "IN", "values": ["1003", "1005"]},
        {"propertyName": "website", "operator": "HAS_PROPERTY"}]


# --- the 10,000-result window -----------------------------------------------------------------


async def test_a_long_search_is_split_by_time_without_gaps_or_duplicates(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, state = api
    state.window = 20  # the app refuses to page past 20 results of one search
    expected = sorted(f"crm:{20_000 + i}" for i in range(95))
    async with hub_for(server.url, tmp_path, entities=bulk_binding("p_bulk"), page_size=7,
                       search_window=20) as hub:
        got = await ids(hub, "product", since=data.START - timedelta(days=1))
        searches = state.searches()
        paged: list[str] = []
        cursor = None
        while True:
            page = await hub.fetch("product", since=data.START - timedelta(days=1), limit=13,
                                   cursor=cursor)
            paged += [r.id for r in page.records]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert len(got) == 95 and sorted(got) == expected
    assert paged == got
    windows = [s for s in searches if "after" not in s]
    assert len(windows) >= 5  # 95 records through windows of 20
    assert all(int(s.get("after", 0)) + s["limit"] <= 20 for s in searches)
    # Every window after the first starts at the last modification time already delivered.
    assert all(w["filterGroups"][0]["filters"][0]["operator"] == "GTE" for w in windows)


async def test_the_real_10000_window(api: tuple[Server, HubSpotApp], tmp_path: Path) -> None:
    server, state = api
    async with hub_for(server.url, tmp_path, entities=bulk_binding("p_big"),
                       page_size=100) as hub:
        got = await ids(hub, "product", since=data.START - timedelta(days=1))
    assert len(got) == 10_250 and len(set(got)) == 10_250
    windows = [s for s in state.searches() if "after" not in s]
    assert len(windows) == 2
    assert max(int(s.get("after", 0)) for s in state.searches()) == 9_900


@pytest.mark.parametrize(("name", "count"), [("p_ties", 8), ("p_tied", 30)])
async def test_more_ties_than_one_window_holds_are_paged_by_id(
    api: tuple[Server, HubSpotApp], tmp_path: Path, name: str, count: int
) -> None:
    server, state = api
    state.window = 5
    since = data.START - timedelta(days=1)
    async with hub_for(server.url, tmp_path, entities=bulk_binding(name), page_size=3,
                       search_window=5) as hub:
        got = await ids(hub, "product", since=since)
        searches = state.searches()
        for size in (1, 4):
            paged: list[str] = []
            cursor = None
            while True:
                page = await hub.fetch("product", since=since, limit=size, cursor=cursor)
                paged += [r.id for r in page.records]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert paged == got
    assert sorted(got) == sorted(f"crm:{20_000 + i}" for i in range(count))
    by_id = [s for s in searches if s["sorts"][0]["propertyName"] == "hs_object_id"]
    assert by_id and all(s["filterGroups"][0]["filters"][0]["operator"] == "EQ" for s in by_id)
    assert all(int(s.get("after", 0)) + s["limit"] <= 5 for s in searches)


# --- resilience and auth ----------------------------------------------------------------------


async def test_429s_are_retried_by_the_resilience_layer(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, state = api
    state.throttle_every = 3
    async with hub_for(server.url, tmp_path) as hub:
        listed = await ids(hub, "contact")
        searched = await ids(hub, "contact", first_name="Eve")
        one = await hub.get("contact", "crm:120")
    assert state.throttled >= 5
    # GETs, searches and association batch reads (POSTs that only read) were all replayed.
    kinds = {path.split(" ")[0] + (" search" if path.endswith("/search") else "")
             for path in state.throttled_paths}
    assert {"GET", "POST search"} <= kinds, state.throttled_paths
    assert len(listed) == 40
    assert searched == [f"crm:{101 + i}" for i in range(40) if i % 5 == 4]
    assert one.first_name == "Eve"


async def test_oauth2_refresh_token_auth(api: tuple[Server, HubSpotApp], tmp_path: Path) -> None:
    server, state = api
    oauth = {"scheme": "oauth2_refresh_token", "token_url": f"{server.url}/oauth/v1/token",
             "client_id": "hubspot-client", "client_secret": "env:HUBSPOT_CLIENT_SECRET",
             "refresh_token": "env:HUBSPOT_REFRESH_TOKEN"}
    async with hub_for(server.url, tmp_path, auth=oauth) as hub:
        assert len(await ids(hub, "product")) == 8
        # Access tokens here expire after three requests: the read refreshes and goes on.
        assert len(await ids(hub, "contact")) == 40
    assert len(state.oauth_uses) >= 3


async def test_a_bad_token_names_the_source_and_never_shows_the_token(
    api: tuple[Server, HubSpotApp], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = api
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-wrong-token-s3cret")
    async with hub_for(server.url, tmp_path) as hub:
        with pytest.raises(SourceError) as caught:
            await ids(hub, "product")
    message = str(caught.value)
    assert "401" in message and "crm" in message and OWNER in message
    assert "private-app token" in message and "s3cret" not in message


# --- bad input --------------------------------------------------------------------------------


async def test_a_page_that_is_not_json(api: tuple[Server, HubSpotApp], tmp_path: Path) -> None:
    server, _ = api
    async with hub_for(server.url, tmp_path, entities=bulk_binding("p_html")) as hub:
        with pytest.raises(SourceError, match=r"GET 127\.0\.0\.1:\d+/crm/v3/objects/p_html "
                                              r"answered text/html \(status 200\), not JSON"):
            await ids(hub, "product")


async def test_a_5xx_page_that_is_not_json_is_unavailable(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, _ = api
    async with hub_for(server.url, tmp_path, entities=bulk_binding("p_down")) as hub:
        with pytest.raises(SourceUnavailable, match=r"GET 127\.0\.0\.1:\d+/crm/v3/objects/p_down "
                                                    r"answered 503 Service Unavailable") as info:
            await ids(hub, "product")
    assert OWNER in str(info.value) and "?" not in str(info.value)


async def test_a_200_with_an_error_body(api: tuple[Server, HubSpotApp], tmp_path: Path) -> None:
    server, _ = api
    async with hub_for(server.url, tmp_path, entities=bulk_binding("p_error")) as hub:
        with pytest.raises(SourceError, match=r"answered 200 with an error: internal error "
                                              r"\(INTERNAL_ERROR\)"):
            await ids(hub, "product")


async def test_an_answer_without_results(api: tuple[Server, HubSpotApp], tmp_path: Path
                                         ) -> None:
    server, _ = api
    async with hub_for(server.url, tmp_path, entities=bulk_binding("p_shapeless")) as hub:
        with pytest.raises(SourceError, match=r"p_shapeless: the answer has no list of results"):
            await ids(hub, "product")


async def test_a_repeating_cursor_is_an_error_not_a_loop(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, state = api
    async with hub_for(server.url, tmp_path, entities=bulk_binding("p_loop")) as hub:
        with pytest.raises(SourceError, match=r"paging cursor 'MTA%3D' twice"):
            await ids(hub, "product")
    assert len(state.seen) == 2


async def test_next_links_to_another_host_are_never_followed(
    api: tuple[Server, HubSpotApp], other: tuple[Server, list[str]], tmp_path: Path
) -> None:
    server, state = api
    _, hits = other
    async with hub_for(server.url, tmp_path) as hub:
        assert len(await ids(hub, "contact")) == 40
    assert all(other[0].url not in str(q) for _, _, q in state.seen if isinstance(q, dict))
    assert hits == []


async def test_a_required_property_missing_is_quarantined_with_its_reason(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, _ = api
    async with hub_for(server.url, tmp_path) as hub:
        stream = hub.query("company")
        [r async for r in stream]
        (bad,) = stream.quality.sources["crm"].samples
    assert bad.remote_id == "1012" and bad.reasons == ("name: required, but missing",)


async def test_a_path_outside_properties_is_named(
    api: tuple[Server, HubSpotApp], tmp_path: Path
) -> None:
    server, _ = api
    entities = {"company": {"fields": {"website": "website"}}}
    async with hub_for(server.url, tmp_path, entities=entities) as hub:
        with pytest.raises(SourceError, match=r"reads 'website'.*properties\.website"):
            await ids(hub, "company")


def test_a_bad_from_block_fails_at_load(tmp_path: Path) -> None:
    entities = {"contact": {"from": {"object": "people"}}}
    with pytest.raises(ConfigError, match=r"sources\.crm\.entities\.contact\.from: object: "
                                          r"unknown HubSpot object 'people'"):
        load_config_data(config("https://api.hubapi.com", tmp_path, entities=entities))


# --- health, schema and the example -----------------------------------------------------------


async def test_check_and_discover(api: tuple[Server, HubSpotApp], tmp_path: Path) -> None:
    server, _ = api
    async with hub_for(server.url, tmp_path, discover=["deals"]) as hub:
        assert await hub.check() == {"crm": None}
        schema = await hub.discover("crm")
    (table,) = schema.tables
    columns = {c.name: c.type for c in table.columns}
    assert table.name == "deals" and columns["id"] == "string"
    assert columns["properties.dealname"] == "string"
    assert columns["properties.closedate"] == "datetime"


def test_the_example_config_loads() -> None:
    config = load_config(EXAMPLE, resolve_secrets=False)
    source = config.sources["hubspot"]
    assert sorted(source.mappings) == ["company", "contact", "deal", "order", "product",
                                       "ticket"]
    assert source.mappings["deal"].spec.fields["amount"]


# --- the conformance kit ----------------------------------------------------------------------


def _case(api: tuple[Server, HubSpotApp], tmp_path: Path, entity: str,
          quarantined: int = 0) -> ConformanceCase:
    server, _ = api
    return ConformanceCase(config=config(server.url, tmp_path, entities={entity: "preset"}),
                           source="crm", entity=entity, base_dir=tmp_path,
                           quarantined=quarantined)


class TestHubSpotContactConformance(ConnectorConformance):
    @pytest.fixture
    def case(self, api: tuple[Server, HubSpotApp], tmp_path: Path) -> ConformanceCase:
        return _case(api, tmp_path, "contact")


class TestHubSpotCompanyConformance(ConnectorConformance):
    @pytest.fixture
    def case(self, api: tuple[Server, HubSpotApp], tmp_path: Path) -> ConformanceCase:
        return _case(api, tmp_path, "company", quarantined=1)


class TestHubSpotDealConformance(ConnectorConformance):
    @pytest.fixture
    def case(self, api: tuple[Server, HubSpotApp], tmp_path: Path) -> ConformanceCase:
        return _case(api, tmp_path, "deal", quarantined=1)


class TestHubSpotOrderConformance(ConnectorConformance):
    @pytest.fixture
    def case(self, api: tuple[Server, HubSpotApp], tmp_path: Path) -> ConformanceCase:
        return _case(api, tmp_path, "order", quarantined=1)


class TestHubSpotTicketConformance(ConnectorConformance):
    @pytest.fixture
    def case(self, api: tuple[Server, HubSpotApp], tmp_path: Path) -> ConformanceCase:
        return _case(api, tmp_path, "ticket", quarantined=1)
